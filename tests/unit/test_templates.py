"""The YAML template loader: defaults, aliases, every validation rule of templates.md §7 with its
exact message, warnings, environment overrides and loading files and directories."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from textwrap import dedent

import pytest

from tasker.domain.template import (
    BackoffKind,
    FailureStrategy,
    IdentityStrategy,
    RetryPolicy,
    StepType,
    resolve_environment,
    template_from_dict,
    template_to_dict,
)
from tasker.errors import TemplateError
from tasker.templates import load_template_file, load_template_text, load_templates

ORIGINAL = Path(__file__).parents[1] / "fixtures" / "templates" / "original"

HEAD = """\
name: order
namespace_name: shop
version: "1.0.0"
"""
LABEL = "template shop/order@1.0.0"


def write(tmp_path: Path, text: str, name: str = "order.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text), encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    path = write(tmp_path, text)
    with pytest.raises(TemplateError) as info:
        load_template_file(path)
    return path, info.value.problems


def only_error(tmp_path: Path, text: str) -> str:
    path, problems = errors_of(tmp_path, text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:")
    return problems[0].removeprefix(f"{path}:")


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tasker.templates"]


def steps_yaml(body: str) -> str:
    """A template whose ``steps:`` list starts at line 5."""
    return HEAD + "steps:\n" + dedent(body)


# --------------------------------------------------------------------------------------------
# Templates written for the original load unchanged
# --------------------------------------------------------------------------------------------


def test_original_fixtures_load_in_sorted_file_order() -> None:
    templates = load_templates([ORIGINAL])
    assert [t.label for t in templates] == [
        "python_e2e_checkpoint_yield/checkpoint_yield_test@1.0.0",
        "billing/invoice_pipeline@1.0.0",
        "support/refund_routing@1.0.0",
        "catalog/reindex_catalog@1.0.0",
        "lending/score_applicant@2.1.0",
    ]


def test_linear_fixture_keeps_retry_timeout_and_initialization() -> None:
    t = load_template_file(ORIGINAL / "invoice_pipeline.yaml")
    price, send = t.step("price_invoice"), t.step("send_invoice")
    assert price.dependencies == ("fetch_invoice",)
    assert price.handler.initialization == {"currency": "EUR"}
    assert price.retry == RetryPolicy(True, 5, BackoffKind.EXPONENTIAL, 500, 10000)
    assert send.retry == RetryPolicy(False, 1, BackoffKind.EXPONENTIAL, 1000, 30000)
    assert send.timeout_seconds == 20


def test_batch_fixture_reads_batch_config_and_types() -> None:
    t = load_template_file(ORIGINAL / "reindex_catalog.yaml")
    worker = t.step("reindex_batch")
    assert [s.type for s in t.steps] == [
        StepType.BATCHABLE,
        StepType.BATCH_WORKER,
        StepType.DEFERRED_CONVERGENCE,
    ]
    assert worker.batch_config is not None
    assert worker.batch_config.worker_template == "reindex_batch"
    assert worker.batch_config.batch_size == 500
    assert worker.batch_config.parallelism == 8
    assert worker.batch_config.cursor_field == "product_id"
    assert worker.batch_config.failure_strategy is FailureStrategy.FAIL_FAST


def test_checkpoint_fixture_accepts_original_quirks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    t = load_template_file(ORIGINAL / "checkpoint_yield_test.yaml")
    batch = t.step("checkpoint_yield_batch")
    assert batch.retry.max_attempts == 0
    assert (batch.retry.backoff_base_ms, batch.retry.max_backoff_ms) == (50, 200)
    assert t.metadata is not None
    assert t.metadata["notes"].startswith("Validates")
    assert t.step("analyze_items").publishes_events[0].delivery_mode == "fast"
    assert t.step("analyze_items").system_dependency is None
    assert t.input_schema is not None
    assert t.input_schema["type"] == "object"
    assert set(t.environments) == {"test"}
    messages = warnings_of(caplog)
    assert not [m for m in messages if "unknown key" in m]  # step lifecycle, metadata extras
    assert any('"checkpoint_yield_batch".retry.max_attempts: 0 is outside' in m for m in messages)


def test_decision_fixture_keeps_step_types() -> None:
    t = load_template_file(ORIGINAL / "refund_routing.yaml")
    assert t.step("choose_path").type is StepType.DECISION
    assert t.step("close_ticket").type is StepType.DEFERRED_CONVERGENCE
    assert t.step("close_ticket").dependencies == ("auto_refund", "supervisor_review")


# --------------------------------------------------------------------------------------------
# Defaults and aliases
# --------------------------------------------------------------------------------------------


def test_defaults_are_applied_to_a_minimal_template() -> None:
    t = load_template_text(steps_yaml("  - {name: only, handler: {callable: shop.Only}}\n"))
    step = t.steps[0]
    assert step.type is StepType.STANDARD
    assert step.dependencies == ()
    assert step.retry == RetryPolicy(True, 3, BackoffKind.EXPONENTIAL, 1000, 30000)
    assert step.handler.method == "call"
    assert step.handler.resolver is None
    assert step.handler.initialization == {}
    assert step.timeout_seconds is None
    assert step.batch_config is None
    assert step.publishes_events == ()
    assert t.identity_strategy is IdentityStrategy.STRICT
    assert t.system_dependencies == {"primary": "default", "secondary": []}
    assert t.environments == {}
    assert t.lifecycle is None
    assert t.description is None


def test_retry_defaults_apply_per_key() -> None:
    t = load_template_text(
        steps_yaml("  - {name: s, handler: {callable: c}, retry: {backoff: linear}}\n")
    )
    assert t.steps[0].retry == RetryPolicy(True, 3, BackoffKind.LINEAR, 1000, 30000)


def test_empty_step_list_is_legal() -> None:
    assert load_template_text(HEAD + "steps: []\n").steps == ()


def test_step_type_and_depends_on_aliases() -> None:
    t = load_template_text(
        steps_yaml("""\
          - {name: a, handler: {callable: c}}
          - {name: d, step_type: decision, depends_on: [a], handler: {callable: c}}
        """)
    )
    assert t.step("d").type is StepType.DECISION
    assert t.step("d").dependencies == ("a",)


def test_dependencies_and_depends_on_together_is_an_error(tmp_path: Path) -> None:
    line = only_error(
        tmp_path,
        steps_yaml("""\
          - {name: a, handler: {callable: c}}
          - name: b
            dependencies: [a]
            depends_on: [a]
            handler: {callable: c}
        """),
    )
    assert line == (
        f'8: {LABEL}: steps[1] "b".depends_on: both "dependencies" and "depends_on" are '
        'given; keep only "dependencies"'
    )


def test_type_and_step_type_together_is_an_error(tmp_path: Path) -> None:
    line = only_error(
        tmp_path,
        steps_yaml("  - {name: a, type: standard, step_type: batchable, handler: {callable: c}}\n"),
    )
    assert 'steps[0] "a".step_type: both "type" and "step_type" are given' in line


def test_deferred_is_read_as_deferred_convergence_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    t = load_template_text(
        steps_yaml("""\
          - {name: a, handler: {callable: c}}
          - {name: j, type: deferred, dependencies: [a], handler: {callable: c}}
        """),
        "order.yaml",
    )
    assert t.step("j").type is StepType.DEFERRED_CONVERGENCE
    assert (
        f'order.yaml:6: {LABEL}: steps[1] "j".type: type "deferred" is read as'
        in (warnings_of(caplog)[0])
    )


# --------------------------------------------------------------------------------------------
# Identity: version, namespace, names
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "2", "1.5e3"])
def test_unquoted_numeric_version_is_rejected(tmp_path: Path, version: str) -> None:
    line = only_error(
        tmp_path, f"name: order\nnamespace_name: shop\nversion: {version}\nsteps: []\n"
    )
    assert line.startswith("3: template shop/order@?: ")
    assert 'version must be a string like "1.0.0", got the number' in line


@pytest.mark.parametrize("version", ['"1.0"', '"v1.0.0"', '"1.0.0-beta"', '"10000000.0000000.0"'])
def test_version_must_be_major_minor_patch(tmp_path: Path, version: str) -> None:
    line = only_error(
        tmp_path, f"name: order\nnamespace_name: shop\nversion: {version}\nsteps: []\n"
    )
    assert 'must look like "1.0.0" (major.minor.patch, at most 16 characters)' in line


def test_unquoted_three_part_version_is_a_string() -> None:
    text = "name: order\nnamespace_name: shop\nversion: 1.0.0\nsteps: []\n"
    assert load_template_text(text).version == "1.0.0"


@pytest.mark.parametrize(
    "field", ["name", "namespace_name", "version", "steps"], ids=lambda f: f"missing-{f}"
)
def test_required_top_level_fields(tmp_path: Path, field: str) -> None:
    values = {"name": "order", "namespace_name": "shop", "version": '"1.0.0"', "steps": "[]"}
    text = "".join(f"{k}: {v}\n" for k, v in values.items() if k != field)
    _, problems = errors_of(tmp_path, text)
    assert [p for p in problems if p.endswith(f"{field}: required field is missing")]


@pytest.mark.parametrize(
    ("namespace", "ok"),
    [
        ("shop", True),
        ("_x9", True),
        ("a" * 29, True),
        ("a" * 30, False),
        ("9shop", False),
        ("my-shop", False),
    ],
)
def test_namespace_rule(tmp_path: Path, namespace: str, ok: bool) -> None:
    text = f'name: order\nnamespace_name: "{namespace}"\nversion: "1.0.0"\nsteps: []\n'
    if ok:
        assert load_template_text(text).namespace_name == namespace
    else:
        line = only_error(tmp_path, text)
        assert line.startswith(
            f'2: template {namespace}/order@1.0.0: namespace_name: "{namespace}" must be 1-29'
        )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "name must not be empty"),
        ("x" * 256, "name is 256 characters long; at most 255"),
        ("bad\\u0007bell", "contains a control or non-printable character"),
        ("nul\\u0000byte", "contains a control or non-printable character"),
        ("a/b", "contains a path separator"),
        ("a\\\\b", "contains a path separator"),
    ],
)
def test_template_and_step_name_rules(tmp_path: Path, name: str, problem: str) -> None:
    text = f'name: "{name}"\nnamespace_name: shop\nversion: "1.0.0"\nsteps:\n'
    text += f'  - {{name: "{name}", handler: {{callable: c}}}}\n'
    path, problems = errors_of(tmp_path, text)
    label = "template shop/?@1.0.0"
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:1: {label}: name: name ")
    assert problems[1].startswith(f"{path}:5: {label}: steps[0]")
    assert ".name: name " in problems[1]
    assert problem in problems[0]
    assert problem in problems[1]


def test_long_but_legal_names_load() -> None:
    name = "x" * 255
    text = f'name: {name}\nnamespace_name: shop\nversion: "1.0.0"\nsteps:\n'
    text += f"  - {{name: {name}, handler: {{callable: c}}}}\n"
    assert load_template_text(text).steps[0].name == name


def test_non_snake_case_template_name_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    t = load_template_text('name: OrderFlow\nnamespace_name: shop\nversion: "1.0.0"\nsteps: []\n')
    assert t.name == "OrderFlow"
    assert any('name: "OrderFlow" is not snake_case' in m for m in warnings_of(caplog))


# --------------------------------------------------------------------------------------------
# Steps and the graph
# --------------------------------------------------------------------------------------------


def test_duplicate_step_names(tmp_path: Path) -> None:
    line = only_error(
        tmp_path,
        steps_yaml("""\
          - {name: pack, handler: {callable: c}}
          - {name: pack, handler: {callable: c}}
        """),
    )
    assert line == f'6: {LABEL}: steps[1] "pack".name: duplicate step name "pack" (also steps[0])'


def test_self_dependency(tmp_path: Path) -> None:
    line = only_error(
        tmp_path,
        steps_yaml("  - name: loop\n    dependencies: [loop]\n    handler: {callable: c}\n"),
    )
    assert line == f'6: {LABEL}: steps[0] "loop".dependencies[0]: step "loop" depends on itself'


def test_unknown_dependency_lists_the_defined_steps(tmp_path: Path) -> None:
    line = only_error(
        tmp_path,
        steps_yaml("""\
          - {name: validate, handler: {callable: c}}
          - {name: charge, dependencies: [validate], handler: {callable: c}}
          - name: ship
            dependencies:
              - charge
              - pack_box
            handler: {callable: c}
        """),
    )
    assert line == (
        f'10: {LABEL}: steps[2] "ship".dependencies[1]: step "ship" depends on "pack_box", '
        "which this template does not define (defined: validate, charge, ship)"
    )


def test_cycle_is_rejected_with_its_path(tmp_path: Path) -> None:
    line = only_error(
        tmp_path,
        steps_yaml("""\
          - {name: a, dependencies: [c], handler: {callable: x}}
          - {name: b, dependencies: [a], handler: {callable: x}}
          - {name: c, dependencies: [b], handler: {callable: x}}
        """),
    )
    assert line == (
        f'5: {LABEL}: steps[0] "a".dependencies: dependency cycle: a -> c -> b -> a '
        "(each step depends on the next)"
    )


def test_a_broken_step_is_still_a_known_dependency(tmp_path: Path) -> None:
    _, problems = errors_of(
        tmp_path,
        steps_yaml("""\
          - {name: a, handler: {callable: ""}}
          - {name: b, dependencies: [a], handler: {callable: x}}
        """),
    )
    assert len(problems) == 1
    assert 'steps[0] "a".handler.callable: is empty' in problems[0]


@pytest.mark.parametrize("callable_", ['""', '"   "'])
def test_empty_callable(tmp_path: Path, callable_: str) -> None:
    line = only_error(
        tmp_path, steps_yaml(f"  - {{name: a, handler: {{callable: {callable_}}}}}\n")
    )
    assert line == f'5: {LABEL}: steps[0] "a".handler.callable: is empty; name the handler to run'


def test_missing_handler_and_callable(tmp_path: Path) -> None:
    _, problems = errors_of(
        tmp_path,
        steps_yaml("""\
          - {name: a}
          - {name: b, handler: {method: run}}
          - handler: {callable: c}
        """),
    )
    assert [p.split(": ", 2)[2] for p in problems] == [
        'steps[0] "a".handler: required field is missing',
        'steps[1] "b".handler.callable: required field is missing',
        "steps[2].name: required field is missing",
    ]


def test_callable_longer_than_500_characters(tmp_path: Path) -> None:
    line = only_error(
        tmp_path, steps_yaml(f"  - {{name: a, handler: {{callable: {'c' * 501}}}}}\n")
    )
    assert 'steps[0] "a".handler.callable: is 501 characters long; at most 500' in line


def test_unknown_step_type(tmp_path: Path) -> None:
    line = only_error(
        tmp_path, steps_yaml("  - {name: a, type: teleport, handler: {callable: c}}\n")
    )
    assert line == (
        f'5: {LABEL}: steps[0] "a".type: must be one of standard, decision, '
        'deferred_convergence, batchable, batch_worker; got the string "teleport"'
    )


def test_decision_without_parent(tmp_path: Path) -> None:
    line = only_error(
        tmp_path, steps_yaml("  - {name: route, type: decision, handler: {callable: c}}\n")
    )
    assert line == (
        f'5: {LABEL}: steps[0] "route".dependencies: decision step "route" needs at least one '
        "dependency"
    )


def test_batch_worker_without_batch_config(tmp_path: Path) -> None:
    line = only_error(
        tmp_path,
        steps_yaml("""\
          - {name: plan, type: batchable, handler: {callable: c}}
          - {name: work, type: batch_worker, dependencies: [plan], handler: {callable: c}}
        """),
    )
    assert line == (
        f'6: {LABEL}: steps[1] "work".batch_config: batch_worker step "work" has no '
        "batch_config, and neither has a batchable step it depends on"
    )


def test_batch_config_on_the_batchable_parent_is_used_for_the_worker() -> None:
    t = load_template_text(
        steps_yaml("""\
          - name: plan
            type: batchable
            handler: {callable: c}
            batch_config: {worker_template: work, batch_size: 50}
          - {name: work, type: batch_worker, dependencies: [plan], handler: {callable: c}}
        """)
    )
    config = t.step("work").batch_config
    assert config is not None
    assert (config.worker_template, config.batch_size) == ("work", 50)


@pytest.mark.parametrize(
    ("target", "kind"), [("nowhere", "is not defined"), ("plan", "is a batchable step")]
)
def test_worker_template_must_name_a_batch_worker(tmp_path: Path, target: str, kind: str) -> None:
    line = only_error(
        tmp_path,
        steps_yaml(f"""\
          - {{name: plan, type: batchable, handler: {{callable: c}}}}
          - name: work
            type: batch_worker
            dependencies: [plan]
            handler: {{callable: c}}
            batch_config:
              worker_template: {target}
        """),
    )
    assert line == (
        f'11: {LABEL}: steps[1] "work".batch_config.worker_template: "{target}" {kind}; '
        "it must name a batch_worker step"
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch_size", 0, "must be between 1 and 100000, got 0"),
        ("parallelism", 1001, "must be between 1 and 1000, got 1001"),
        ("failure_strategy", "explode", "must be one of continue_on_failure, fail_fast, isolate"),
        ("cursor_field", '""', "must not be empty"),
    ],
)
def test_batch_config_ranges(tmp_path: Path, key: str, value: object, message: str) -> None:
    line = only_error(
        tmp_path,
        steps_yaml(f"""\
          - {{name: plan, type: batchable, handler: {{callable: c}}}}
          - name: work
            type: batch_worker
            dependencies: [plan]
            handler: {{callable: c}}
            batch_config: {{worker_template: work, {key}: {value}}}
        """),
    )
    assert f'steps[1] "work".batch_config.{key}: {message}' in line


def test_static_step_named_like_a_generated_worker(tmp_path: Path) -> None:
    line = only_error(
        tmp_path,
        steps_yaml("""\
          - {name: plan, type: batchable, handler: {callable: c}}
          - name: work
            type: batch_worker
            dependencies: [plan]
            handler: {callable: c}
            batch_config: {worker_template: work}
          - {name: work_001, dependencies: [plan], handler: {callable: c}}
        """),
    )
    assert 'steps[2] "work_001".name: "work_001" is the name a generated worker' in line


def test_orphan_step_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    load_template_text(
        steps_yaml("""\
          - {name: a, handler: {callable: c}}
          - {name: b, dependencies: [a], handler: {callable: c}}
          - {name: lonely, handler: {callable: c}}
        """),
        "order.yaml",
    )
    assert warnings_of(caplog) == [
        f'order.yaml:7: {LABEL}: steps[2] "lonely": orphan step: it depends on nothing and '
        "nothing depends on it"
    ]


# --------------------------------------------------------------------------------------------
# Retry
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "where", "message"),
    [
        ("max_attempts: 1001", "max_attempts", "must be between 0 and 1000, got 1001"),
        ("max_attempts: -1", "max_attempts", "must be between 0 and 1000, got -1"),
        ("max_attempts: 2.5", "max_attempts", "must be an integer, got the number 2.5"),
        ("max_attempts: true", "max_attempts", "must be an integer, got the boolean true"),
        ("backoff_base_ms: 3600001", "backoff_base_ms", "must be between 0 and 3600000"),
        ("max_backoff_ms: -5", "max_backoff_ms", "must be between 0 and 3600000, got -5"),
        ("retryable: 'no'", "retryable", 'must be true or false, got the string "no"'),
        ("backoff: expo", "backoff", "must be one of none, linear, exponential, fibonacci"),
    ],
)
def test_retry_hard_limits(tmp_path: Path, retry: str, where: str, message: str) -> None:
    line = only_error(
        tmp_path, steps_yaml(f"  - {{name: a, handler: {{callable: c}}, retry: {{{retry}}}}}\n")
    )
    assert line.startswith(f'5: {LABEL}: steps[0] "a".retry.{where}: {message}')


@pytest.mark.parametrize(
    ("retry", "warning"),
    [
        ("max_attempts: 0", "max_attempts: 0 is outside the recommended range 1..100"),
        ("max_attempts: 101", "max_attempts: 101 is outside the recommended range 1..100"),
        ("backoff_base_ms: 50", "backoff_base_ms: 50 is below the recommended minimum 100"),
        (
            "max_backoff_ms: 200, backoff_base_ms: 100",
            "max_backoff_ms: 200 is below the recommended minimum 1000",
        ),
        (
            "max_backoff_ms: 2000, backoff_base_ms: 5000",
            "max_backoff_ms: 2000 is below backoff_base_ms 5000",
        ),
    ],
)
def test_retry_advisory_ranges_only_warn(
    caplog: pytest.LogCaptureFixture, retry: str, warning: str
) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    load_template_text(
        steps_yaml(f"  - {{name: a, handler: {{callable: c}}, retry: {{{retry}}}}}\n")
    )
    assert [m for m in warnings_of(caplog) if f'steps[0] "a".retry.{warning}' in m]


def test_legacy_retry_keys_are_translated(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    t = load_template_text(
        steps_yaml(
            "  - {name: a, handler: {callable: c},\n"
            "     retry: {limit: 7, initial_delay: 2, max_delay: 0.5}}\n"
        )
    )
    assert (t.steps[0].retry.max_attempts, t.steps[0].retry.backoff_base_ms) == (7, 2000)
    assert t.steps[0].retry.max_backoff_ms == 500
    messages = warnings_of(caplog)
    assert any('retry.limit: legacy key, read as "max_attempts"' in m for m in messages)
    assert any(
        'retry.initial_delay: legacy key (seconds), read as "backoff_base_ms: 2000"' in m
        for m in messages
    )


def test_legacy_retry_keys_lose_to_the_current_ones(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    t = load_template_text(
        steps_yaml(
            "  - {name: a, handler: {callable: c},\n"
            "     retry: {limit: 7, max_attempts: 2, initial_delay: 9, backoff_base_ms: 300}}\n"
        )
    )
    assert (t.steps[0].retry.max_attempts, t.steps[0].retry.backoff_base_ms) == (2, 300)
    assert any(
        'retry.limit: legacy key ignored because "max_attempts" is given' in m
        for m in warnings_of(caplog)
    )


# --------------------------------------------------------------------------------------------
# Events, schemas, lifecycle
# --------------------------------------------------------------------------------------------


EVENT = "description: d, schema: {type: object}"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("shipped", "must contain a dot (namespace.action)"),
        (".shipped", "must not start or end with a dot"),
        ("order.", "must not start or end with a dot"),
        ("order..shipped", "must not contain two dots in a row"),
    ],
)
def test_event_names_must_be_dotted(tmp_path: Path, name: str, problem: str) -> None:
    line = only_error(
        tmp_path,
        steps_yaml(
            f"  - {{name: a, handler: {{callable: c}},\n"
            f"     publishes_events: [{{name: '{name}', {EVENT}}}]}}\n"
        ),
    )
    assert (
        line == f'6: {LABEL}: steps[0] "a".publishes_events[0].name: event name "{name}" {problem}'
    )


def test_event_name_with_capitals_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    t = load_template_text(
        steps_yaml(
            f"  - {{name: a, handler: {{callable: c}},\n"
            f"     publishes_events: [{{name: Order.Shipped, {EVENT}}}]}}\n"
        )
    )
    assert t.steps[0].publishes_events[0].name == "Order.Shipped"
    assert any("has characters outside a-z 0-9 _ ." in m for m in warnings_of(caplog))


def test_event_needs_description_and_valid_schema(tmp_path: Path) -> None:
    _, problems = errors_of(
        tmp_path,
        steps_yaml("""\
          - name: a
            handler: {callable: c}
            publishes_events:
              - {name: order.shipped, schema: {type: object}, condition: sometimes}
              - {name: order.lost, description: d, schema: {type: objekt}}
        """),
    )
    tails = [p.split(": ", 2)[2] for p in problems]
    assert tails[0] == 'steps[0] "a".publishes_events[0].description: required field is missing'
    assert tails[1].startswith('steps[0] "a".publishes_events[0].condition: must be one of success')
    assert tails[2].startswith('steps[0] "a".publishes_events[1].schema: not a valid JSON Schema')
    assert len(tails) == 3


def test_input_schema_must_be_a_valid_json_schema(tmp_path: Path) -> None:
    line = only_error(
        tmp_path, HEAD + "input_schema: {type: object, required: applicant}\nsteps: []\n"
    )
    assert line.startswith(f"4: {LABEL}: input_schema: not a valid JSON Schema: ")
    assert "(at required)" in line


def test_input_schema_must_be_a_mapping(tmp_path: Path) -> None:
    line = only_error(tmp_path, HEAD + "input_schema: [a]\nsteps: []\n")
    assert line == f"4: {LABEL}: input_schema: must be a mapping (a JSON Schema object), got a list"


def test_lifecycle_is_parsed_and_range_checked(tmp_path: Path) -> None:
    t = load_template_text(
        HEAD + "lifecycle: {max_waiting_for_retry_minutes: 5, staleness_action: error}\nsteps: []\n"
    )
    assert t.lifecycle is not None
    assert t.lifecycle.max_waiting_for_retry_minutes == 5
    assert t.lifecycle.staleness_action == "error"
    assert t.lifecycle.max_duration_minutes is None
    line = only_error(tmp_path, HEAD + "lifecycle:\n  max_duration_minutes: 43201\nsteps: []\n")
    assert (
        line
        == f"5: {LABEL}: lifecycle.max_duration_minutes: must be between 1 and 43200, got 43201"
    )


def test_identity_strategy(tmp_path: Path) -> None:
    t = load_template_text(HEAD + "identity_strategy: always_unique\nsteps: []\n")
    assert t.identity_strategy is IdentityStrategy.ALWAYS_UNIQUE
    line = only_error(tmp_path, HEAD + "identity_strategy: sometimes\nsteps: []\n")
    assert "identity_strategy: must be one of strict, caller_provided, always_unique" in line


def test_opaque_data_must_survive_json(tmp_path: Path) -> None:
    line = only_error(
        tmp_path, steps_yaml("  - {name: a, handler: {callable: c, initialization: {1: one}}}\n")
    )
    assert (
        'steps[0] "a".handler.initialization: must be plain JSON data: key 1 is not a string'
        in line
    )


# --------------------------------------------------------------------------------------------
# Document level: YAML, legacy format, unknown keys
# --------------------------------------------------------------------------------------------


def test_yaml_syntax_error_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    path, problems = errors_of(tmp_path, HEAD + "steps: [a, b\nfoo: 1\n")
    assert problems == [f"{path}:5: invalid YAML: expected ',' or ']', but got ':' (column 4)"]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path, problems = errors_of(tmp_path, "- name: order\n")
    assert problems == [f"{path}:1: a template must be a mapping of fields, got a list"]


def test_repeated_key_is_an_error(tmp_path: Path) -> None:
    line = only_error(tmp_path, HEAD + "steps: []\nname: other\n")
    assert line == "1: template shop/other@1.0.0: name: key repeated in the same mapping (line 5)"


def test_yaml_1_2_scalars_stay_strings() -> None:
    t = load_template_text(
        steps_yaml(
            "  - name: a\n"
            "    handler:\n"
            "      callable: c\n"
            "      initialization: {flag: on, at: 12:30, day: 2024-01-02, n: 010}\n"
        )
    )
    assert t.steps[0].handler.initialization == {
        "flag": "on",
        "at": "12:30",
        "day": "2024-01-02",
        "n": 10,
    }


def test_legacy_rails_format_is_rejected(tmp_path: Path) -> None:
    line = only_error(
        tmp_path, HEAD + "task_handler_class: OrderHandler\nstep_templates:\n  - name: a\n"
    )
    assert line == (
        f"5: {LABEL}: step_templates: legacy template format (step_templates) is not "
        "supported; use steps"
    )


def test_legacy_task_handler_next_to_steps_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    load_template_text(HEAD + "task_handler_class: OrderHandler\nsteps: []\n", "o.yaml")
    assert warnings_of(caplog) == [
        f"o.yaml:4: {LABEL}: task_handler_class: legacy key from the Rails format, ignored"
    ]


def test_unknown_keys_warn_once_per_path(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    t = load_template_text(
        HEAD
        + dedent("""\
            colour: blue
            steps:
              - name: a
                handler: {callable: c, flavour: x}
                weight: 3
                lifecycle: {max_retries: 2}
                retry: {jitter: true}
            environments:
              test:
                steps: [{name: a, bogus: 1}]
        """),
        "o.yaml",
    )
    assert t.steps[0].name == "a"
    assert warnings_of(caplog) == [
        f"o.yaml:4: {LABEL}: colour: unknown key, ignored",
        f'o.yaml:8: {LABEL}: steps[0] "a".weight: unknown key, ignored',
        f'o.yaml:7: {LABEL}: steps[0] "a".handler.flavour: unknown key, ignored',
        f'o.yaml:10: {LABEL}: steps[0] "a".retry.jitter: unknown key, ignored',
        f'o.yaml:13: {LABEL}: environments.test.steps[0] "a".bogus: unknown key, ignored',
    ]


# --------------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------------

ENV_TEMPLATE = steps_yaml("""\
  - name: fetch
    handler: {callable: c, initialization: {url: prod, keep: 1}}
    retry: {retryable: false, max_attempts: 5, backoff_base_ms: 700}
    timeout_seconds: 60
  - name: store
    dependencies: [fetch]
    handler: {callable: c}
""") + dedent("""\
    environments:
      test:
        steps:
          - name: ALL
            timeout_seconds: 10
            retry: {max_attempts: 2}
          - name: fetch
            retry: {backoff: linear, initial_delay: 1}
            handler: {initialization: {url: local}}
          - name: ghost
            timeout_seconds: 1
""")


def test_environment_overrides_apply_in_order_and_merge(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tasker.templates")
    t = load_template_text(ENV_TEMPLATE, "o.yaml")
    resolved = resolve_environment(t, "test")
    fetch, store = resolved.step("fetch"), resolved.step("store")
    assert fetch.handler.initialization == {"url": "local", "keep": 1}
    assert fetch.retry == RetryPolicy(False, 2, BackoffKind.LINEAR, 1000, 30000)
    assert fetch.timeout_seconds == 10
    assert store.timeout_seconds == 10
    assert store.retry == RetryPolicy(True, 2, BackoffKind.EXPONENTIAL, 1000, 30000)
    assert t.step("fetch").retry.max_attempts == 5  # the loaded template is unchanged
    assert any(
        'environments.test.steps[2] "ghost".name: no step "ghost" in this template' in m
        for m in warnings_of(caplog)
    )


def test_unknown_environment_changes_nothing() -> None:
    t = load_template_text(ENV_TEMPLATE)
    assert resolve_environment(t, "production") is t


def test_template_dict_round_trips_through_json_and_the_loader() -> None:
    for t in [*load_templates([ORIGINAL]), load_template_text(ENV_TEMPLATE)]:
        stored = json.loads(json.dumps(template_to_dict(t)))
        assert template_from_dict(stored) == t
        assert load_template_text(json.dumps(stored)) == t


# --------------------------------------------------------------------------------------------
# Files and directories
# --------------------------------------------------------------------------------------------

GOOD = HEAD + "steps: []\n"


def test_directory_loading_collects_errors_from_every_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a_good.yaml")
    bad_version = write(
        tmp_path, "name: x\nnamespace_name: shop\nversion: 2\nsteps: []\n", "b.yaml"
    )
    bad_dep = write(
        tmp_path,
        steps_yaml("  - {name: s, dependencies: [t], handler: {callable: c}}\n"),
        "sub/c.yml",
    )
    write(tmp_path, "not: [yaml", "sub/deeper/d.yaml")
    with pytest.raises(TemplateError) as info:
        load_templates([tmp_path])
    problems = info.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{bad_version}:3: template shop/x@?: version must be a string")
    assert problems[1].startswith(
        f'{bad_dep}:5: {LABEL}: steps[0] "s".dependencies[0]: step "s" depends on "t"'
    )
    assert problems[2].startswith(f"{tmp_path / 'sub/deeper/d.yaml'}:1: invalid YAML")


def test_directory_search_is_recursive_sorted_and_skips_other_files(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("order", "zeta"), "z.yml")
    write(tmp_path, GOOD.replace("order", "alpha"), "deep/er/a.yaml")
    write(tmp_path, "this is not a template", "notes.txt")
    write(tmp_path, "garbage: [", ".hidden/x.yaml")
    assert [t.name for t in load_templates([tmp_path])] == ["alpha", "zeta"]


def test_same_identity_in_two_files_is_an_error(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, "a.yaml")
    second = write(tmp_path, "# copy\n" + GOOD, "b.yaml")
    with pytest.raises(TemplateError) as info:
        load_templates([tmp_path])
    assert info.value.problems == [
        f"{second}:2: {LABEL}: defined twice (also {first}:1); each namespace, name and "
        "version must be defined once"
    ]


def test_multi_document_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "---\n" + GOOD.replace("1.0.0", "2.0.0") + "---\n")
    assert [t.version for t in load_templates([path])] == ["1.0.0", "2.0.0"]
    with pytest.raises(TemplateError, match="expected one template, found 2"):
        load_template_file(path)


def test_missing_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as info:
        load_templates([tmp_path / "nope"])
    assert info.value.problems == [f"{tmp_path / 'nope'}: no such file or directory"]


def test_source_name_appears_in_text_errors() -> None:
    with pytest.raises(TemplateError) as info:
        load_template_text(HEAD + "steps: {}\n", source="inline.yaml")
    assert (
        str(info.value)
        == f"inline.yaml:4: {LABEL}: steps: must be a list (it may be empty), got a mapping"
    )
