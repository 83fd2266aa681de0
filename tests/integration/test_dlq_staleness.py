"""The staleness detector and the DLQ read/update functions, on both backends.

No worker runs here: a created task's first step stays ``enqueued`` and the task rests in
``steps_in_process``, so time is moved by passing a later ``now``, never by sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tasker.config import Settings
from tasker.domain.states import StepState, TaskState
from tasker.errors import IllegalTransition, NotFound
from tasker.orchestration.dlq import (
    StalenessThresholds,
    StaleTask,
    detect_stale_tasks,
    dlq_entry_for_task,
    dlq_stats,
    investigation_queue,
    list_dlq_entries,
    staleness_report,
    update_dlq_entry,
)
from tasker.orchestration.operator import complete_step_manually
from tasker.runtime import Tasker
from tasker.templates import load_template_text

WAITING = """
name: waiting
namespace_name: ops
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: only
    handler: {callable: ops_never_runs}
"""

PATIENT = """
name: patient
namespace_name: ops
version: "1.0.0"
identity_strategy: always_unique
lifecycle: {max_steps_in_process_minutes: 5}
steps:
  - name: only
    handler: {callable: ops_never_runs}
"""

ONE_MINUTE = StalenessThresholds(steps_in_process_minutes=1.0)


@pytest.fixture
def app(store_url: str) -> Iterator[Tasker]:
    """An engine that is never started: tasks stay where creation left them."""
    tasker = Tasker(store_url, settings=Settings.load({"jitter_enabled": False}, environ={}))
    tasker.register_template(load_template_text(WAITING))
    tasker.register_template(load_template_text(PATIENT))
    yield tasker
    tasker.close()


def later(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def create(app: Tasker, name: str = "waiting") -> str:
    task_uuid = app.create_task(name, namespace="ops")
    assert app.get_task(task_uuid).state == TaskState.STEPS_IN_PROCESS.value
    return task_uuid


def detect(
    app: Tasker,
    now: datetime,
    *,
    dry_run: bool = False,
    default_thresholds: StalenessThresholds = ONE_MINUTE,
) -> list[StaleTask]:
    with app.store.transaction() as tx:
        return detect_stale_tasks(
            tx, app.templates, now, dry_run=dry_run, default_thresholds=default_thresholds
        )


def dlq_count(app: Tasker) -> int:
    with app.store.read() as tx:
        return tx.table_counts()["dlq_entries"]


# -- detection --------------------------------------------------------------------------------


def test_a_stale_task_gets_one_dlq_entry_and_moves_to_error(app: Tasker) -> None:
    task_uuid = create(app)
    now = later(2)
    found = detect(app, now)
    assert [(s.task_uuid, s.moved, s.trigger) for s in found] == [
        (task_uuid, True, "time_in_state")
    ]
    assert found[0].threshold_minutes == 1.0
    assert found[0].time_in_state_minutes >= 2.0
    assert app.get_task(task_uuid).state == TaskState.ERROR.value

    with app.store.read() as tx:
        entry = dlq_entry_for_task(tx, task_uuid)
        last = tx.task_transitions(task_uuid)[-1]
    assert entry is not None
    assert (entry.dlq_reason, entry.resolution_status) == ("staleness_timeout", "pending")
    assert entry.original_state == "steps_in_process"
    assert entry.task_snapshot["current_state"] == "steps_in_process"
    assert entry.task_snapshot["threshold_minutes"] == 1.0
    assert entry.task_snapshot["task_name"] == "waiting"
    assert set(entry.task_snapshot["task_details"]) == {
        "correlation_id",
        "priority",
        "requested_at",
        "created_at",
    }
    assert entry.metadata is not None
    assert entry.metadata["detection_method"] == "automatic_staleness"
    assert (last.event, last.to_state) == ("staleness_timeout", "error")
    assert last.metadata["reason"] == "staleness_timeout"
    assert last.metadata["namespace"] == "ops"
    assert last.metadata["task_name"] == "waiting"
    assert last.metadata["detected_at"] == now.isoformat()

    assert detect(app, later(3)) == []
    assert dlq_count(app) == 1


def test_a_task_below_its_threshold_is_left_alone(app: Tasker) -> None:
    task_uuid = create(app)
    assert detect(app, later(0.5)) == []
    assert app.get_task(task_uuid).state == TaskState.STEPS_IN_PROCESS.value
    assert dlq_count(app) == 0


def test_the_template_lifecycle_overrides_the_default_threshold(app: Tasker) -> None:
    task_uuid = create(app, "patient")
    assert detect(app, later(2)) == []
    found = detect(app, later(6))
    assert [(s.task_uuid, s.threshold_minutes) for s in found] == [(task_uuid, 5.0)]


def test_a_task_past_its_max_lifetime_is_stale_whatever_its_state_threshold(app: Tasker) -> None:
    task_uuid = create(app)
    lifetime = StalenessThresholds(steps_in_process_minutes=1000.0, max_lifetime_minutes=1.0)
    found = detect(app, later(2), default_thresholds=lifetime)
    assert [(s.task_uuid, s.trigger, s.threshold_minutes) for s in found] == [
        (task_uuid, "max_lifetime", 1.0)
    ]


def test_a_dry_run_reports_and_writes_nothing(app: Tasker) -> None:
    task_uuid = create(app)
    with app.store.read() as tx:
        before = tx.table_counts()
    found = detect(app, later(2), dry_run=True)
    assert [(s.task_uuid, s.moved) for s in found] == [(task_uuid, False)]
    with app.store.read() as tx:
        assert tx.table_counts() == before
    assert app.get_task(task_uuid).state == TaskState.STEPS_IN_PROCESS.value


def test_concurrent_detectors_open_exactly_one_entry_per_task(app: Tasker) -> None:
    tasks = {create(app) for _ in range(3)}
    now = later(2)
    barrier = threading.Barrier(2)
    results: list[list[StaleTask]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(5)
            results.append(detect(app, now))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    moved = [s.task_uuid for found in results for s in found if s.moved]
    assert sorted(moved) == sorted(tasks)
    assert dlq_count(app) == 3


def test_an_operator_action_resumes_a_task_that_went_stale(app: Tasker) -> None:
    task_uuid = create(app)
    detect(app, later(2))
    step = app.get_task(task_uuid).steps["only"]
    assert step.state == StepState.ENQUEUED.value
    with app.store.transaction() as tx:
        outcome = complete_step_manually(
            tx,
            task_uuid,
            step.step_uuid,
            later(3),
            result={"ok": True},
            completed_by="o",
            reason="done elsewhere",
        )
    assert outcome.resumed
    assert outcome.task_state is TaskState.COMPLETE
    assert app.get_task(task_uuid).state == TaskState.COMPLETE.value


# -- monitoring -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "label"), [(1.0, "healthy"), (8.5, "warning"), (11.0, "stale")]
)
def test_staleness_report_labels_tasks_by_share_of_threshold(
    app: Tasker, minutes: float, label: str
) -> None:
    task_uuid = create(app)
    thresholds = StalenessThresholds(steps_in_process_minutes=10.0)
    with app.store.read() as tx:
        report = staleness_report(tx, later(minutes), thresholds=thresholds)
    assert [(r.task_uuid, r.health_status) for r in report] == [(task_uuid, label)]
    row = report[0]
    assert row.staleness_threshold_minutes == 10.0
    assert row.current_state == "steps_in_process"
    assert (row.namespace_name, row.task_name, row.priority) == ("ops", "waiting", 0)
    assert minutes - 0.1 < row.time_in_state_minutes < minutes + 0.1


def test_staleness_report_puts_the_most_overdue_first_and_skips_finished_tasks(app: Tasker) -> None:
    patient = create(app, "patient")  # threshold 5 min: 40 % overdue at 2 min
    hasty = create(app)  # threshold 1 min: 200 % at 2 min
    finished = create(app)
    app.cancel_task(finished)
    with app.store.read() as tx:
        report = staleness_report(tx, later(2), thresholds=ONE_MINUTE)
    assert [r.task_uuid for r in report] == [hasty, patient]


# -- reading and resolving entries ------------------------------------------------------------


def open_entry(app: Tasker, task_uuid: str, reason: str, at: datetime) -> None:
    with app.store.transaction() as tx:
        assert tx.insert_dlq_entry(task_uuid, "blocked_by_failures", reason, {}, {"k": 1}, at)


def test_investigation_queue_orders_by_reason_then_waiting_time(app: Tasker) -> None:
    now = later(0)
    stale_old, retries_new, stale_new = create(app), create(app), create(app)
    open_entry(app, stale_old, "staleness_timeout", now - timedelta(minutes=30))
    open_entry(app, retries_new, "max_retries_exceeded", now - timedelta(minutes=1))
    open_entry(app, stale_new, "staleness_timeout", now - timedelta(minutes=5))
    with app.store.read() as tx:
        queue = investigation_queue(tx, now)
    assert [q.task_uuid for q in queue] == [retries_new, stale_old, stale_new]
    assert abs(queue[0].priority_score - 501.0) < 0.1
    assert abs(queue[1].priority_score - 130.0) < 0.1
    assert abs(queue[1].minutes_in_dlq - 30.0) < 0.1
    assert queue[0].current_state == "steps_in_process"
    assert queue[0].namespace_name == "ops"


def test_update_dlq_entry_records_the_resolution(app: Tasker) -> None:
    task_uuid = create(app)
    opened = later(0)
    open_entry(app, task_uuid, "max_retries_exceeded", opened)
    with app.store.read() as tx:
        entry = dlq_entry_for_task(tx, task_uuid)
    assert entry is not None
    resolved_at = later(10)
    with app.store.transaction() as tx:
        updated = update_dlq_entry(
            tx,
            entry.dlq_entry_uuid,
            resolution_status="manually_resolved",
            resolution_notes="reset the payment step",
            resolved_by="ops@example",
            metadata={"ticket": "OPS-9"},
            now=resolved_at,
        )
    assert updated.resolution_status == "manually_resolved"
    assert updated.resolution_timestamp == resolved_at
    assert (updated.resolution_notes, updated.resolved_by) == (
        "reset the payment step",
        "ops@example",
    )
    assert updated.metadata == {"k": 1, "ticket": "OPS-9"}

    with app.store.transaction() as tx:
        notes_only = update_dlq_entry(
            tx, entry.dlq_entry_uuid, resolution_notes="more", now=later(20)
        )
    assert notes_only.resolution_timestamp == resolved_at  # stays: it did not leave pending now
    assert notes_only.resolved_by == "ops@example"

    with app.store.read() as tx:
        stats = {s.dlq_reason: s for s in dlq_stats(tx)}
    assert set(stats) == {"max_retries_exceeded"}
    row = stats["max_retries_exceeded"]
    assert (row.total_entries, row.pending, row.manually_resolved) == (1, 0, 1)
    assert row.avg_resolution_time_minutes is not None
    assert abs(row.avg_resolution_time_minutes - 10.0) < 0.1


def test_update_dlq_entry_refuses_bad_requests_and_writes_nothing(app: Tasker) -> None:
    task_uuid = create(app)
    open_entry(app, task_uuid, "manual_dlq", later(0))
    with app.store.read() as tx:
        entry = dlq_entry_for_task(tx, task_uuid)
    assert entry is not None
    with (
        pytest.raises(IllegalTransition, match="unknown resolution_status 'fixed'"),
        app.store.transaction() as tx,
    ):
        update_dlq_entry(tx, entry.dlq_entry_uuid, resolution_status="fixed", now=later(1))
    with pytest.raises(NotFound), app.store.transaction() as tx:
        update_dlq_entry(tx, "no-such-entry", resolution_status="cancelled", now=later(1))
    with app.store.read() as tx:
        assert dlq_entry_for_task(tx, task_uuid) == entry

    # Closing, then reopening while a newer entry is pending, is refused: one pending per task.
    with app.store.transaction() as tx:
        update_dlq_entry(tx, entry.dlq_entry_uuid, resolution_status="cancelled", now=later(2))
    open_entry(app, task_uuid, "manual_dlq", later(3))
    with (
        pytest.raises(IllegalTransition, match="already has a pending entry"),
        app.store.transaction() as tx,
    ):
        update_dlq_entry(tx, entry.dlq_entry_uuid, resolution_status="pending", now=later(4))


def test_list_dlq_entries_filters_and_pages_newest_first(app: Tasker) -> None:
    first, second, third = create(app), create(app), create(app)
    base = later(0)
    for offset, task_uuid in enumerate((first, second, third)):
        open_entry(app, task_uuid, "manual_dlq", base + timedelta(minutes=offset))
    with app.store.transaction() as tx:
        newest = list_dlq_entries(tx, limit=1)[0]
        update_dlq_entry(tx, newest.dlq_entry_uuid, resolution_status="cancelled", now=later(5))
    with app.store.read() as tx:
        everything = list_dlq_entries(tx)
        pending = list_dlq_entries(tx, resolution_status="pending")
        second_page = list_dlq_entries(tx, limit=2, offset=2)
        latest_third = dlq_entry_for_task(tx, third)
    assert [e.task_uuid for e in everything] == [third, second, first]
    assert [e.task_uuid for e in pending] == [second, first]
    assert [e.task_uuid for e in second_page] == [first]
    assert newest.task_uuid == third
    assert latest_third is not None
    assert latest_third.resolution_status == "cancelled"


# -- the engine's own detector ------------------------------------------------------------------


def test_a_running_engine_checks_staleness_on_its_own(store_url: str) -> None:
    """R5.5 without a manual call: the maintenance loop runs the detector at its interval."""
    settings = Settings.load(
        {
            "jitter_enabled": False,
            "namespaces": "elsewhere",  # nothing serves ops: the task rests in steps_in_process
            "maintenance_interval_s": 0.02,
            "staleness_check_interval_s": 0.05,
            "stale_steps_in_process_minutes": 0.002,  # 0.12 s
        },
        environ={},
    )
    with Tasker(store_url, settings=settings) as engine:
        engine.register_template(load_template_text(WAITING))
        task_uuid = engine.create_task("waiting", namespace="ops")
        view = engine.wait(task_uuid, timeout_s=10)
        with engine.store.read() as tx:
            entry = dlq_entry_for_task(tx, task_uuid)

    assert view.state == TaskState.ERROR.value
    assert entry is not None
    assert (entry.dlq_reason, entry.resolution_status) == ("staleness_timeout", "pending")
    assert entry.task_snapshot["threshold_minutes"] == 0.002
