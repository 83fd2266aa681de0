"""Graph rules on random DAGs, cycle rejection at load, and the stored template form.

Random DAGs only draw edges from a lower to a higher generation index, so they are acyclic by
construction; the template order of their steps is then shuffled.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasker.domain.dag import (
    ancestors,
    decision_segment,
    descendants,
    find_cycle,
    initial_step_names,
    topological_order,
)
from tasker.domain.template import (
    BackoffKind,
    BatchConfig,
    EnvironmentOverride,
    EventDeclaration,
    FailureStrategy,
    HandlerSpec,
    IdentityStrategy,
    Lifecycle,
    RetryPolicy,
    StepOverride,
    StepTemplate,
    StepType,
    TaskTemplate,
    template_from_dict,
    template_to_dict,
)
from tasker.errors import TemplateError
from tasker.templates import load_template_file, load_template_text

ORIGINAL = Path(__file__).parents[1] / "fixtures" / "templates" / "original"

Graph = dict[str, list[str]]


@st.composite
def dags(draw: st.DrawFn, max_steps: int = 12) -> tuple[Graph, list[str]]:
    """A random DAG in shuffled template order, and its nodes in generation order."""
    n = draw(st.integers(1, max_steps))
    names = [f"s{i}" for i in range(n)]
    deps = {
        names[j]: draw(st.lists(st.sampled_from(names[:j]), unique=True)) if j else []
        for j in range(n)
    }
    order = draw(st.permutations(names))
    return {name: deps[name] for name in order}, names


def edges(graph: Graph) -> list[tuple[str, str]]:
    """``(step, dependency)`` pairs."""
    return [(step, dep) for step, deps in graph.items() for dep in deps]


def closure(graph: Graph) -> dict[str, set[str]]:
    """Transitive dependencies by repeated relaxation: a second, independent computation."""
    reach = {name: set(deps) for name, deps in graph.items()}
    changed = True
    while changed:
        changed = False
        for name in reach:
            extra = set().union(*(reach[d] for d in reach[name])) - reach[name]
            if extra:
                reach[name] |= extra
                changed = True
    return reach


@given(dags())
def test_random_dag_has_no_cycle(dag: tuple[Graph, list[str]]) -> None:
    assert find_cycle(dag[0]) is None


@given(dags())
def test_topological_order_respects_every_edge(dag: tuple[Graph, list[str]]) -> None:
    graph, _ = dag
    order = topological_order(graph)
    assert sorted(order) == sorted(graph)
    position = {name: i for i, name in enumerate(order)}
    for step, dep in edges(graph):
        assert position[dep] < position[step]


@given(dags())
def test_topological_order_keeps_an_already_valid_order(dag: tuple[Graph, list[str]]) -> None:
    graph, generation = dag
    in_generation_order = {name: graph[name] for name in generation}
    assert topological_order(in_generation_order) == generation


@given(dags())
def test_topological_order_breaks_ties_by_template_order(dag: tuple[Graph, list[str]]) -> None:
    graph, _ = dag
    order = topological_order(graph)
    template_position = {name: i for i, name in enumerate(graph)}
    done: set[str] = set()
    for name in order:
        free = [n for n in graph if n not in done and set(graph[n]) <= done]
        assert name == min(free, key=template_position.__getitem__)
        done.add(name)


@given(dags())
def test_ancestors_and_descendants_match_the_closure(dag: tuple[Graph, list[str]]) -> None:
    graph, _ = dag
    reach = closure(graph)
    for name in graph:
        assert ancestors(name, graph) == reach[name]
        assert descendants(name, graph) == {other for other in graph if name in reach[other]}


@st.composite
def cyclic(draw: st.DrawFn) -> Graph:
    """A random DAG plus one back edge along an existing path, which closes a cycle."""
    graph, _ = draw(dags().filter(lambda d: any(d[0].values())))
    reach = closure(graph)
    step = draw(st.sampled_from(sorted(n for n in graph if reach[n])))
    ancestor = draw(st.sampled_from(sorted(reach[step])))
    graph[ancestor] = [*graph[ancestor], step]
    return graph


@given(cyclic())
def test_back_edge_is_found_as_a_closed_path_of_real_edges(graph: Graph) -> None:
    cycle = find_cycle(graph)
    assert cycle is not None
    assert len(cycle) >= 3
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for step, dep in itertools.pairwise(cycle):
        assert dep in graph[step]
    with pytest.raises(ValueError, match="dependency cycle"):
        topological_order(graph)


def as_document(graph: Graph) -> dict[str, Any]:
    return {
        "name": "random_graph",
        "namespace_name": "prop",
        "version": "1.0.0",
        "steps": [
            {"name": name, "dependencies": deps, "handler": {"callable": "h.Step"}}
            for name, deps in graph.items()
        ],
    }


@settings(max_examples=50)
@given(cyclic())
def test_loader_rejects_a_cycle_with_its_path(graph: Graph) -> None:
    with pytest.raises(TemplateError) as info:
        load_template_text(json.dumps(as_document(graph)), "graph.json")
    cycle = find_cycle(graph)
    assert cycle is not None
    assert "dependency cycle: " + " -> ".join(cycle) in str(info.value)


@settings(max_examples=50)
@given(dags())
def test_loader_accepts_every_random_dag(dag: tuple[Graph, list[str]]) -> None:
    graph, _ = dag
    template = load_template_text(json.dumps(as_document(graph)))
    assert {s.name: list(s.dependencies) for s in template.steps} == graph


# --------------------------------------------------------------------------------------------
# Decisions and the initial step set
# --------------------------------------------------------------------------------------------


@st.composite
def typed_steps(draw: st.DrawFn) -> dict[str, StepTemplate]:
    graph, _ = draw(dags())
    kinds = st.sampled_from(list(StepType))
    return {
        name: StepTemplate(
            name=name,
            handler=HandlerSpec(callable="h"),
            type=draw(kinds),
            dependencies=tuple(deps),
        )
        for name, deps in graph.items()
    }


@given(typed_steps())
def test_initial_steps_skip_dynamic_types_and_everything_behind_them(
    steps: dict[str, StepTemplate],
) -> None:
    graph = {name: list(s.dependencies) for name, s in steps.items()}
    template = TaskTemplate("t", "ns", "1.0.0", steps=tuple(steps.values()))
    dynamic = (StepType.DECISION, StepType.BATCH_WORKER, StepType.DEFERRED_CONVERGENCE)
    behind = set().union(*(descendants(n, graph) for n, s in steps.items() if s.type in dynamic))
    expected = [
        n
        for n, s in steps.items()
        if n not in behind and s.type not in (StepType.BATCH_WORKER, StepType.DEFERRED_CONVERGENCE)
    ]
    assert initial_step_names(template) == expected


@given(typed_steps(), st.data())
def test_decision_segment_is_what_the_decision_reaches_without_crossing_another(
    steps: dict[str, StepTemplate], data: st.DataObject
) -> None:
    graph = {name: list(s.dependencies) for name, s in steps.items()}
    decision = data.draw(st.sampled_from(sorted(steps)))
    segment = decision_segment(decision, steps)

    def entered_through(name: str) -> bool:
        """Has a parent that is the decision, or a non-decision step of the segment."""
        return any(
            dep == decision or (dep in segment and steps[dep].type is not StepType.DECISION)
            for dep in steps[name].dependencies
        )

    assert segment <= descendants(decision, graph)
    for name in descendants(decision, graph):
        assert (name in segment) == entered_through(name)


def test_decision_segment_of_the_refund_fixture() -> None:
    t = load_template_file(ORIGINAL / "refund_routing.yaml")
    by_name = {s.name: s for s in t.steps}
    assert decision_segment("choose_path", by_name) == {
        "auto_refund",
        "agent_review",
        "supervisor_review",
        "close_ticket",
    }
    assert initial_step_names(t) == ["check_refund", "choose_path"]


def test_nested_decision_is_a_boundary_of_the_outer_segment() -> None:
    def step(name: str, kind: StepType, *deps: str) -> StepTemplate:
        return StepTemplate(name, HandlerSpec("h"), kind, deps)

    steps = [
        step("root", StepType.STANDARD),
        step("outer", StepType.DECISION, "root"),
        step("inner", StepType.DECISION, "outer"),
        step("left", StepType.STANDARD, "inner"),
        step("mid", StepType.STANDARD, "outer"),
    ]
    assert decision_segment("outer", {s.name: s for s in steps}) == {"inner", "mid"}


@pytest.mark.parametrize(
    ("fixture", "initial"),
    [
        ("reindex_catalog.yaml", ["plan_reindex"]),
        ("checkpoint_yield_test.yaml", ["analyze_items"]),
        ("score_applicant.yaml", ["load_applicant", "credit_check", "fraud_check", "final_score"]),
    ],
)
def test_initial_steps_of_the_fixtures(fixture: str, initial: list[str]) -> None:
    assert initial_step_names(load_template_file(ORIGINAL / fixture)) == initial


# --------------------------------------------------------------------------------------------
# Stored form: template_to_dict / template_from_dict
# --------------------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), max_size=12)  # no lone surrogates
names = st.text(
    st.characters(categories=("L", "N", "P", "S"), exclude_characters="/\\"),
    min_size=1,
    max_size=12,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(texts, json_values, max_size=3)
SCHEMA = {"type": "object"}


def retry_policies() -> st.SearchStrategy[RetryPolicy]:
    return st.builds(
        RetryPolicy,
        retryable=st.booleans(),
        max_attempts=st.integers(0, 1000),
        backoff=st.sampled_from(list(BackoffKind)),
        backoff_base_ms=st.integers(0, 3_600_000),
        max_backoff_ms=st.integers(0, 3_600_000),
    )


events = st.builds(
    EventDeclaration,
    name=st.from_regex(r"[a-z_]{1,5}\.[a-z_]{1,5}", fullmatch=True),
    description=texts,
    schema=st.just(SCHEMA),
    condition=st.sampled_from(
        ["success", "failure", "retryable_failure", "permanent_failure", "always"]
    ),
    delivery_mode=st.sampled_from(["durable", "fast", "broadcast"]),
    publisher=st.none() | texts,
)


@st.composite
def valid_templates(draw: st.DrawFn) -> TaskTemplate:
    """Templates the loader accepts: every field drawn, the graph a random DAG."""
    graph, _ = draw(dags(max_steps=6))
    steps = []
    for name, deps in graph.items():
        kind = draw(st.sampled_from(list(StepType)))
        if kind is StepType.DECISION and not deps:
            kind = StepType.STANDARD
        batch = None
        if kind is StepType.BATCH_WORKER:
            batch = BatchConfig(
                worker_template=name,
                batch_size=draw(st.integers(1, 100_000)),
                parallelism=draw(st.integers(1, 1000)),
                cursor_field=draw(names),
                failure_strategy=draw(st.sampled_from(list(FailureStrategy))),
            )
        steps.append(
            StepTemplate(
                name=name,
                handler=HandlerSpec(
                    callable=draw(names),
                    method=draw(names),
                    resolver=draw(st.none() | names),
                    initialization=draw(json_objects),
                ),
                type=kind,
                dependencies=tuple(deps),
                retry=draw(retry_policies()),
                timeout_seconds=draw(st.none() | st.integers(1, 86_400)),
                description=draw(st.none() | texts),
                batch_config=batch,
                publishes_events=tuple(draw(st.lists(events, max_size=2))),
                system_dependency=draw(st.none() | texts),
                result_schema=draw(st.none() | st.just(SCHEMA)),
                composition=draw(json_values),
            )
        )
    overrides = st.builds(
        StepOverride,
        name=st.sampled_from([*graph, "ALL"]),
        timeout_seconds=st.none() | st.integers(1, 600),
        retry=st.fixed_dictionaries(
            {},
            optional={
                "retryable": st.booleans(),
                "max_attempts": st.integers(0, 1000),
                "backoff": st.sampled_from(list(BackoffKind)),
            },
        ),
        initialization=json_objects,
    )
    lifecycles = st.builds(
        Lifecycle,
        max_duration_minutes=st.none() | st.integers(1, 43_200),
        max_waiting_for_retry_minutes=st.none() | st.integers(1, 10_080),
        staleness_action=st.sampled_from(["dlq", "error", "none"]),
        auto_fail_on_timeout=st.none() | st.booleans(),
    )
    return TaskTemplate(
        name=draw(names),
        namespace_name=draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,28}", fullmatch=True)),
        version=".".join(str(draw(st.integers(0, 999))) for _ in range(3)),
        steps=tuple(steps),
        description=draw(st.none() | texts),
        metadata=draw(
            st.none() | st.dictionaries(texts.map("x_".__add__), json_values, max_size=3)
        ),
        system_dependencies={
            "primary": draw(names),
            "secondary": draw(st.lists(texts, max_size=2)),
        },
        domain_events=tuple(
            draw(
                st.lists(
                    st.fixed_dictionaries({"name": names, "description": st.none() | texts}),
                    max_size=2,
                )
            )
        ),
        input_schema=draw(st.none() | st.just({"type": "object", "required": ["id"]})),
        environments=draw(
            st.dictionaries(
                names,
                st.builds(EnvironmentOverride, steps=st.lists(overrides, max_size=3).map(tuple)),
                max_size=2,
            )
        ),
        lifecycle=draw(st.none() | lifecycles),
        identity_strategy=draw(st.sampled_from(list(IdentityStrategy))),
    )


def enum_fields(t: TaskTemplate) -> list[object]:
    """Every enum-typed value, to check types and not just (str-equal) values."""
    found: list[object] = [t.identity_strategy]
    for s in t.steps:
        found += [s.type, s.retry.backoff]
        if s.batch_config is not None:
            found.append(s.batch_config.failure_strategy)
    found += [
        o.retry["backoff"] for e in t.environments.values() for o in e.steps if "backoff" in o.retry
    ]
    return found


@settings(max_examples=150)
@given(valid_templates())
def test_stored_form_round_trips_through_json(t: TaskTemplate) -> None:
    stored = json.loads(json.dumps(template_to_dict(t), allow_nan=False))
    back = template_from_dict(stored)
    assert back == t
    assert [type(v) for v in enum_fields(back)] == [type(v) for v in enum_fields(t)]


@settings(max_examples=100)
@given(valid_templates())
def test_stored_form_is_a_template_document_the_loader_reads_back(t: TaskTemplate) -> None:
    assert load_template_text(json.dumps(template_to_dict(t))) == t


@given(valid_templates())
def test_stored_form_shares_nothing_with_the_template(t: TaskTemplate) -> None:
    before = json.dumps(template_to_dict(t))
    stored = template_to_dict(t)
    for step in stored["steps"]:
        step["handler"]["initialization"]["added"] = 1
        step["dependencies"].append("added")
        for event in step["publishes_events"]:
            event["schema"]["added"] = 1
    for environment in stored["environments"].values():
        for override in environment["steps"]:
            override["handler"]["initialization"]["added"] = 1
    if stored["metadata"] is not None:
        stored["metadata"]["added"] = 1
    assert json.dumps(template_to_dict(t)) == before
