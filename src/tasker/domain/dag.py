"""Graph rules over a template's steps: cycles, order, reachability, decision segments.

Graphs are given as ``{step: [its dependencies]}`` in template order. A dependency that is not a
key of the mapping is treated as an outside node with no dependencies of its own: it can never be
part of a cycle, and ``topological_order`` leaves it out. Everything here is iterative, so a deep
chain of steps cannot hit Python's recursion limit.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from tasker.domain.template import StepTemplate, StepType, TaskTemplate

__all__ = [
    "ancestors",
    "decision_segment",
    "descendants",
    "find_cycle",
    "initial_step_names",
    "topological_order",
]

_WHITE, _GREY, _BLACK = 0, 1, 2


def find_cycle(dependencies: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Find one dependency cycle, so a template can be rejected with a readable path.

    Args:
        dependencies: each step mapped to the steps it depends on.

    Returns:
        The cycle as a closed path that follows "depends on" edges, e.g. ``["a", "b", "a"]``
        (a depends on b, b depends on a); a self dependency gives ``["a", "a"]``. ``None`` when
        the graph is acyclic. Deterministic: the search starts from steps in mapping order.
    """
    color: dict[str, int] = dict.fromkeys(dependencies, _WHITE)
    for root in dependencies:
        if color[root] != _WHITE:
            continue
        # Each frame: (node, iterator position into its dependency list).
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        color[root] = _GREY
        while stack:
            node, pos = stack[-1]
            deps = dependencies[node]
            if pos == len(deps):
                stack.pop()
                path.pop()
                color[node] = _BLACK
                continue
            stack[-1] = (node, pos + 1)
            dep = deps[pos]
            state = color.get(dep)
            if state is None or state == _BLACK:
                continue
            if state == _GREY:
                return [*path[path.index(dep) :], dep]
            color[dep] = _GREY
            stack.append((dep, 0))
            path.append(dep)
    return None


def topological_order(dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """Order steps so that every step comes after all of its dependencies.

    Among steps that are free to go next, the one earliest in mapping (template) order wins, so
    the result is stable and a template that is already ordered comes back unchanged.

    Args:
        dependencies: each step mapped to the steps it depends on.

    Returns:
        Every key of ``dependencies`` exactly once.

    Raises:
        ValueError: the graph has a cycle; the message shows its path.
    """
    position = {name: i for i, name in enumerate(dependencies)}
    waiting_on: dict[str, int] = {}
    dependents: dict[str, list[str]] = {name: [] for name in dependencies}
    for name, deps in dependencies.items():
        known = {dep for dep in deps if dep in position}
        waiting_on[name] = len(known)
        for dep in known:
            dependents[dep].append(name)
    ready = [position[name] for name, count in waiting_on.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    names = list(dependencies)
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in dependents[name]:
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                heapq.heappush(ready, position[child])
    if len(order) != len(names):
        cycle = find_cycle(dependencies) or []
        raise ValueError("dependency cycle: " + " -> ".join(cycle))
    return order


def ancestors(name: str, dependencies: Mapping[str, Sequence[str]]) -> set[str]:
    """Every step ``name`` depends on, directly or transitively.

    Args:
        name: the step to start from.
        dependencies: each step mapped to the steps it depends on.

    Returns:
        The steps reachable by one or more "depends on" edges (``name`` itself only if it lies
        on a cycle).
    """
    return _reachable(name, dependencies)


def descendants(name: str, dependencies: Mapping[str, Sequence[str]]) -> set[str]:
    """Every step that depends on ``name``, directly or transitively.

    Args:
        name: the step to start from.
        dependencies: each step mapped to the steps it depends on.

    Returns:
        The steps reachable by one or more "is depended on by" edges.
    """
    return _reachable(name, _reverse(dependencies))


def decision_segment(decision: str, template_steps_by_name: Mapping[str, StepTemplate]) -> set[str]:
    """The steps a decision step may activate (batch-and-decisions.md §1.1).

    Follows dependents from ``decision``; another decision step met on the way is included as a
    boundary but not walked through, since the steps behind it belong to its own segment.

    Args:
        decision: name of the decision step.
        template_steps_by_name: the template's steps, keyed by name.

    Returns:
        The segment, without ``decision`` itself.
    """
    dependents = _reverse({name: s.dependencies for name, s in template_steps_by_name.items()})
    segment: set[str] = set()
    frontier = [decision]
    while frontier:
        for child in dependents.get(frontier.pop(), ()):
            if child in segment or child == decision:
                continue
            segment.add(child)
            if template_steps_by_name[child].type is not StepType.DECISION:
                frontier.append(child)
    return segment


def initial_step_names(template: TaskTemplate) -> list[str]:
    """The steps created when a task starts (execution.md §2 step 3), in template order.

    Left out: ``batch_worker`` templates and ``deferred_convergence`` joins (created by
    expansions), every step with a decision among its transitive dependencies (created only
    if that decision chooses it), and every step downstream of a batch worker or convergence
    step (created with them; our addition to execution.md §2, see docs/decisions).

    Args:
        template: the (environment-resolved) template.

    Returns:
        Step names in template order.
    """
    dependencies = {s.name: s.dependencies for s in template.steps}
    later = {StepType.BATCH_WORKER, StepType.DEFERRED_CONVERGENCE}
    # A step behind a decision, a batch worker or a convergence step is created by the
    # expansion that creates its parents; created now, it would run without them.
    deferred = {s.name for s in template.steps if s.type is StepType.DECISION or s.type in later}
    return [
        s.name
        for s in template.steps
        if s.type not in later and not (deferred & ancestors(s.name, dependencies))
    ]


def _reverse(dependencies: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """``{step: [steps that depend on it]}``, in mapping order."""
    dependents: dict[str, list[str]] = {name: [] for name in dependencies}
    for name, deps in dependencies.items():
        for dep in dict.fromkeys(deps):
            dependents.setdefault(dep, []).append(name)
    return dependents


def _reachable(start: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    seen: set[str] = set()
    frontier = list(edges.get(start, ()))
    while frontier:
        node = frontier.pop()
        if node not in seen:
            seen.add(node)
            frontier.extend(edges.get(node, ()))
    return seen
