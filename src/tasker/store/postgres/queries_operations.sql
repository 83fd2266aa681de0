-- Named queries of operator actions, the DLQ, staleness and the REST read models (PostgreSQL).
-- Same names and parameters as sqlite/queries_operations.sql. Parameters are :named (the store
-- rewrites them for psycopg); a parameter that may be null, or whose type the server cannot
-- infer, is CAST explicitly. Time spans are minutes as double precision.

-- name: task_last_event
-- The event of a task's most recent transition (why it is in its current state).
SELECT event FROM task_transitions WHERE task_uuid = :task_uuid ORDER BY sort_key DESC LIMIT 1;

-- name: task_state_timing
-- When a task entered its current state and when it was created (staleness re-check under lock).
SELECT state, state_entered_at, created_at FROM tasks WHERE task_uuid = :task_uuid;

-- name: stale_task_candidates
-- Unfinished tasks past their staleness threshold or max lifetime, no pending DLQ entry (execution.md §8).
SELECT x.task_uuid FROM (
    SELECT t.task_uuid, t.state_entered_at,
           CAST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - t.state_entered_at))
                AS double precision) / 60.0 AS time_in_state_minutes,
           CAST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - t.created_at))
                AS double precision) / 60.0 AS task_age_minutes,
           COALESCE(
               CAST(CASE t.state
                   WHEN 'waiting_for_dependencies'
                       THEN nt.configuration -> 'lifecycle' ->> 'max_waiting_for_dependencies_minutes'
                   WHEN 'waiting_for_retry'
                       THEN nt.configuration -> 'lifecycle' ->> 'max_waiting_for_retry_minutes'
                   WHEN 'steps_in_process'
                       THEN nt.configuration -> 'lifecycle' ->> 'max_steps_in_process_minutes'
               END AS double precision),
               CASE t.state
                   WHEN 'waiting_for_dependencies'
                       THEN CAST(:waiting_for_dependencies_minutes AS double precision)
                   WHEN 'waiting_for_retry' THEN CAST(:waiting_for_retry_minutes AS double precision)
                   ELSE CAST(:steps_in_process_minutes AS double precision)
               END) AS threshold_minutes
    FROM tasks t JOIN named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
    WHERE t.state IN ('waiting_for_dependencies', 'waiting_for_retry', 'steps_in_process')
      AND NOT t.complete
      AND NOT EXISTS (SELECT 1 FROM dlq_entries d
                      WHERE d.task_uuid = t.task_uuid AND d.resolution_status = 'pending')
) x
WHERE x.time_in_state_minutes >= x.threshold_minutes
   OR x.task_age_minutes >= CAST(:max_lifetime_minutes AS double precision)
ORDER BY x.state_entered_at, x.task_uuid
LIMIT :limit;

-- name: staleness_monitoring
-- Unfinished tasks with time in state, age and threshold, the most overdue first (rest-api.md §4).
SELECT x.* FROM (
    SELECT t.task_uuid, t.namespace, t.name, t.state, t.priority,
           CAST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - t.state_entered_at))
                AS double precision) / 60.0 AS time_in_state_minutes,
           CAST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - t.created_at))
                AS double precision) / 60.0 AS task_age_minutes,
           COALESCE(
               CAST(CASE t.state
                   WHEN 'waiting_for_dependencies'
                       THEN nt.configuration -> 'lifecycle' ->> 'max_waiting_for_dependencies_minutes'
                   WHEN 'waiting_for_retry'
                       THEN nt.configuration -> 'lifecycle' ->> 'max_waiting_for_retry_minutes'
                   WHEN 'steps_in_process'
                       THEN nt.configuration -> 'lifecycle' ->> 'max_steps_in_process_minutes'
               END AS double precision),
               CASE t.state
                   WHEN 'waiting_for_dependencies'
                       THEN CAST(:waiting_for_dependencies_minutes AS double precision)
                   WHEN 'waiting_for_retry' THEN CAST(:waiting_for_retry_minutes AS double precision)
                   WHEN 'steps_in_process' THEN CAST(:steps_in_process_minutes AS double precision)
                   ELSE CAST(:other_state_minutes AS double precision)
               END) AS threshold_minutes
    FROM tasks t JOIN named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
    WHERE t.state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
) x
ORDER BY x.time_in_state_minutes / x.threshold_minutes DESC, x.task_uuid
LIMIT :limit;

-- name: dlq_entries_page
-- DLQ entries, newest first, optionally of one resolution status.
SELECT * FROM dlq_entries
WHERE (CAST(:resolution_status AS text) IS NULL
       OR resolution_status = CAST(:resolution_status AS text))
ORDER BY dlq_timestamp DESC, dlq_entry_uuid DESC
LIMIT :limit OFFSET :offset;

-- name: dlq_entry_latest_for_task
-- A task's most recent DLQ entry.
SELECT * FROM dlq_entries WHERE task_uuid = :task_uuid
ORDER BY dlq_timestamp DESC, dlq_entry_uuid DESC
LIMIT 1;

-- name: lock_dlq_entry
-- One DLQ entry, row-locked until commit, before it is updated.
SELECT * FROM dlq_entries WHERE dlq_entry_uuid = :dlq_entry_uuid FOR UPDATE;

-- name: other_pending_dlq_entry
-- Whether the task has another pending DLQ entry (only one may be pending, A13).
SELECT dlq_entry_uuid FROM dlq_entries
WHERE task_uuid = :task_uuid AND resolution_status = 'pending'
  AND dlq_entry_uuid <> :dlq_entry_uuid;

-- name: update_dlq_entry
-- Record an operator's resolution of a DLQ entry.
UPDATE dlq_entries SET resolution_status = :resolution_status,
    resolution_timestamp = :resolution_timestamp, resolution_notes = :resolution_notes,
    resolved_by = :resolved_by, metadata = CAST(:metadata AS jsonb), updated_at = :now
WHERE dlq_entry_uuid = :dlq_entry_uuid;

-- name: dlq_stats
-- DLQ entry counts per reason, by resolution status, with age and resolution time.
SELECT dlq_reason,
       COUNT(*) AS total_entries,
       COUNT(*) FILTER (WHERE resolution_status = 'pending') AS pending,
       COUNT(*) FILTER (WHERE resolution_status = 'manually_resolved') AS manually_resolved,
       COUNT(*) FILTER (WHERE resolution_status = 'permanently_failed') AS permanent_failures,
       COUNT(*) FILTER (WHERE resolution_status = 'cancelled') AS cancelled,
       MIN(dlq_timestamp) AS oldest_entry,
       MAX(dlq_timestamp) AS newest_entry,
       AVG(CAST(EXTRACT(EPOCH FROM (resolution_timestamp - dlq_timestamp)) AS double precision)
           / 60.0) AS avg_resolution_time_minutes
FROM dlq_entries
GROUP BY dlq_reason
ORDER BY dlq_reason;

-- name: dlq_investigation_queue
-- Pending DLQ entries by triage priority: base by reason + minutes since entry (execution.md §9.1).
SELECT x.*, x.base_priority + x.minutes_in_dlq AS priority_score FROM (
    SELECT d.dlq_entry_uuid, d.task_uuid, d.original_state, d.dlq_reason, d.dlq_timestamp,
           CAST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - d.dlq_timestamp))
                AS double precision) / 60.0 AS minutes_in_dlq,
           t.namespace AS namespace_name, t.name AS task_name, t.state AS current_state,
           CAST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - t.state_entered_at))
                AS double precision) / 60.0 AS time_in_state_minutes,
           CASE d.dlq_reason
               WHEN 'dependency_cycle_detected'
                   THEN CAST(:priority_dependency_cycle_detected AS double precision)
               WHEN 'max_retries_exceeded'
                   THEN CAST(:priority_max_retries_exceeded AS double precision)
               WHEN 'staleness_timeout' THEN CAST(:priority_staleness_timeout AS double precision)
               WHEN 'worker_unavailable' THEN CAST(:priority_worker_unavailable AS double precision)
               ELSE CAST(:priority_other AS double precision)
           END AS base_priority
    FROM dlq_entries d LEFT JOIN tasks t ON t.task_uuid = d.task_uuid
    WHERE d.resolution_status = 'pending'
) x
ORDER BY priority_score DESC, x.dlq_entry_uuid
LIMIT :limit;

-- name: task_page
-- Tasks newest first with the step counts of TaskResponse (rest-api.md §4); null filters match all.
WITH page AS (
    SELECT t.* FROM tasks t
    WHERE (CAST(:task_uuid AS text) IS NULL OR t.task_uuid = CAST(:task_uuid AS text))
      AND (CAST(:namespace AS text) IS NULL OR t.namespace = CAST(:namespace AS text))
      AND (CAST(:name AS text) IS NULL OR t.name = CAST(:name AS text))
      AND (CAST(:status AS text) IS NULL OR t.state = CAST(:status AS text))
      AND (CAST(:initiator AS text) IS NULL OR t.initiator = CAST(:initiator AS text))
      AND (CAST(:source_system AS text) IS NULL
           OR t.source_system = CAST(:source_system AS text))
    ORDER BY t.created_at DESC, t.task_uuid DESC
    LIMIT :limit OFFSET :offset
)
SELECT p.*,
       COALESCE(c.total_steps, 0) AS total_steps,
       COALESCE(c.pending_steps, 0) AS pending_steps,
       COALESCE(c.in_progress_steps, 0) AS in_progress_steps,
       COALESCE(c.satisfied_steps, 0) AS satisfied_steps,
       COALESCE(c.error_steps, 0) AS error_steps,
       COALESCE(c.pipeline_steps, 0) AS pipeline_steps,
       COALESCE(c.retrying_steps, 0) AS retrying_steps,
       COALESCE(c.ready_steps, 0) AS ready_steps
FROM page p LEFT JOIN (
    SELECT s.task_uuid,
           COUNT(*) AS total_steps,
           COUNT(*) FILTER (WHERE s.state IN ('pending', 'waiting_for_retry')) AS pending_steps,
           COUNT(*) FILTER (WHERE s.state = 'in_progress') AS in_progress_steps,
           COUNT(*) FILTER (WHERE s.state IN ('complete', 'resolved_manually')) AS satisfied_steps,
           COUNT(*) FILTER (WHERE s.state = 'error') AS error_steps,
           COUNT(*) FILTER (WHERE s.state IN ('enqueued', 'in_progress',
               'enqueued_for_orchestration', 'enqueued_as_error_for_orchestration'))
               AS pipeline_steps,
           COUNT(*) FILTER (WHERE s.state = 'waiting_for_retry') AS retrying_steps,
           COUNT(r.workflow_step_uuid) FILTER (
               WHERE r.next_retry_at IS NULL OR r.next_retry_at <= :now) AS ready_steps
    FROM workflow_steps s
    LEFT JOIN workflow_steps_eligible r ON r.workflow_step_uuid = s.workflow_step_uuid
    WHERE s.task_uuid IN (SELECT task_uuid FROM page)
    GROUP BY s.task_uuid
) c ON c.task_uuid = p.task_uuid
ORDER BY p.created_at DESC, p.task_uuid DESC;

-- name: task_count
-- How many tasks match the task_page filters.
SELECT COUNT(*) AS n FROM tasks t
WHERE (CAST(:namespace AS text) IS NULL OR t.namespace = CAST(:namespace AS text))
  AND (CAST(:name AS text) IS NULL OR t.name = CAST(:name AS text))
  AND (CAST(:status AS text) IS NULL OR t.state = CAST(:status AS text))
  AND (CAST(:initiator AS text) IS NULL OR t.initiator = CAST(:initiator AS text))
  AND (CAST(:source_system AS text) IS NULL OR t.source_system = CAST(:source_system AS text));

-- name: task_state_totals
-- How many tasks are in each state.
SELECT state, COUNT(*) AS n FROM tasks GROUP BY state;

-- name: step_readiness
-- A task's steps (or one of them) with parent counts and last failure time, oldest first.
SELECT s.*,
       (SELECT COUNT(DISTINCT e.from_step_uuid) FROM workflow_step_edges e
        WHERE e.to_step_uuid = s.workflow_step_uuid) AS total_parents,
       (SELECT COUNT(DISTINCT e.from_step_uuid) FROM workflow_step_edges e
        JOIN workflow_steps parent ON parent.workflow_step_uuid = e.from_step_uuid
        WHERE e.to_step_uuid = s.workflow_step_uuid
          AND parent.state IN ('complete', 'resolved_manually')) AS completed_parents,
       (SELECT MAX(tr.created_at) FROM workflow_step_transitions tr
        WHERE tr.workflow_step_uuid = s.workflow_step_uuid
          AND tr.to_state IN ('enqueued_as_error_for_orchestration', 'error')) AS last_failure_at
FROM workflow_steps s
WHERE s.task_uuid = :task_uuid
  AND (CAST(:workflow_step_uuid AS text) IS NULL
       OR s.workflow_step_uuid = CAST(:workflow_step_uuid AS text))
ORDER BY s.created_at, s.step_seq;

-- name: step_audit
-- A step's result audit rows with their transitions, oldest first (states.md §3.2).
SELECT a.workflow_step_result_audit_uuid AS audit_uuid, a.workflow_step_uuid,
       a.workflow_step_transition_uuid AS transition_uuid, a.task_uuid, a.recorded_at,
       a.worker_uuid, a.correlation_id, a.success, a.execution_time_ms, a.attempt,
       s.name AS step_name, tr.from_state, tr.to_state, tr.metadata AS transition_metadata
FROM workflow_step_result_audit a
JOIN workflow_steps s ON s.workflow_step_uuid = a.workflow_step_uuid
LEFT JOIN workflow_step_transitions tr
       ON tr.workflow_step_uuid = a.workflow_step_uuid
      AND tr.workflow_step_transition_uuid = a.workflow_step_transition_uuid
WHERE a.workflow_step_uuid = :workflow_step_uuid AND a.task_uuid = :task_uuid
ORDER BY a.recorded_at, a.attempt, a.workflow_step_result_audit_uuid;

-- name: analytics_performance
-- Totals of the tasks created in [:since, :now] and of their steps' worker results (one row;
-- tasker.orchestration.analytics defines each figure). Durations in seconds, null when none.
SELECT tt.*, st.* FROM (
    SELECT COUNT(*) AS total_tasks,
           COUNT(*) FILTER (WHERE t.state NOT IN ('complete', 'error', 'cancelled',
               'resolved_manually', 'blocked_by_failures')) AS active_tasks,
           COUNT(*) FILTER (WHERE t.state = 'complete') AS completed_tasks,
           COUNT(*) FILTER (WHERE t.state IN ('error', 'blocked_by_failures')) AS failed_tasks,
           AVG(CASE WHEN t.state IN ('complete', 'error')
                    THEN CAST(EXTRACT(EPOCH FROM (t.state_entered_at - t.created_at))
                              AS double precision)
               END) AS average_task_duration_seconds
    FROM tasks t
    WHERE t.created_at >= CAST(:since AS timestamptz) AND t.created_at <= CAST(:now AS timestamptz)
) tt CROSS JOIN (
    SELECT COUNT(*) AS step_executions,
           COUNT(*) FILTER (WHERE NOT a.success) AS failed_step_executions,
           AVG(a.execution_time_ms) / 1000.0 AS average_step_duration_seconds
    FROM tasks t
    JOIN workflow_steps s ON s.task_uuid = t.task_uuid
    JOIN workflow_step_result_audit a ON a.workflow_step_uuid = s.workflow_step_uuid
    WHERE t.created_at >= CAST(:since AS timestamptz) AND t.created_at <= CAST(:now AS timestamptz)
) st;

-- name: analytics_slow_steps
-- Worker results grouped by template step, slowest average handler time first; groups with
-- fewer than :min_executions results are left out.
SELECT t.namespace AS namespace_name, t.name AS task_name, t.version,
       s.template_step_name AS step_name,
       COALESCE(AVG(a.execution_time_ms), 0.0) / 1000.0 AS average_duration_seconds,
       COALESCE(MAX(a.execution_time_ms), 0.0) / 1000.0 AS max_duration_seconds,
       COUNT(*) AS execution_count,
       COUNT(*) FILTER (WHERE NOT a.success) AS error_count,
       MAX(a.recorded_at) AS last_executed_at
FROM workflow_step_result_audit a
JOIN workflow_steps s ON s.workflow_step_uuid = a.workflow_step_uuid
JOIN tasks t ON t.task_uuid = s.task_uuid
GROUP BY t.namespace, t.name, t.version, s.template_step_name
HAVING COUNT(*) >= CAST(:min_executions AS bigint)
ORDER BY average_duration_seconds DESC, execution_count DESC,
         namespace_name, task_name, t.version, step_name
LIMIT :limit;

-- name: analytics_slow_tasks
-- Finished (complete or error) tasks grouped by template, slowest average duration (creation to
-- entering the final state) first; groups with fewer than :min_executions tasks are left out.
SELECT x.namespace AS namespace_name, x.name AS task_name, x.version,
       AVG(x.duration_seconds) AS average_duration_seconds,
       MAX(x.duration_seconds) AS max_duration_seconds,
       COUNT(*) AS execution_count,
       COUNT(*) FILTER (WHERE x.state = 'error') AS error_count,
       AVG(x.step_count) AS average_step_count,
       MAX(x.state_entered_at) AS last_executed_at
FROM (
    SELECT t.namespace, t.name, t.version, t.state, t.state_entered_at,
           CAST(EXTRACT(EPOCH FROM (t.state_entered_at - t.created_at)) AS double precision)
               AS duration_seconds,
           (SELECT COUNT(*) FROM workflow_steps s WHERE s.task_uuid = t.task_uuid) AS step_count
    FROM tasks t
    WHERE t.state IN ('complete', 'error')
) x
GROUP BY x.namespace, x.name, x.version
HAVING COUNT(*) >= CAST(:min_executions AS bigint)
ORDER BY average_duration_seconds DESC, execution_count DESC, namespace_name, task_name, x.version
LIMIT :limit;
