-- Named queries for the SQLite store. Each query sits under a "-- name: <name>" header with a
-- one-line comment. Parameters are :named. The PostgreSQL store has a file with the same names.

-- name: find_named_task
-- The registered template for (namespace, name, version).
SELECT named_task_uuid, configuration FROM named_tasks
WHERE namespace = :namespace AND name = :name AND version = :version;

-- name: named_task_by_uuid
-- A registered template by id (workers read templates this way).
SELECT named_task_uuid, configuration FROM named_tasks WHERE named_task_uuid = :named_task_uuid;

-- name: upsert_named_task
-- Register a template; the same key again replaces its configuration (templates.md §1).
INSERT INTO named_tasks (named_task_uuid, namespace, name, version, configuration,
                         identity_strategy, created_at, updated_at)
VALUES (:named_task_uuid, :namespace, :name, :version, :configuration, :identity_strategy, :now, :now)
ON CONFLICT (namespace, name, version) DO UPDATE SET
    configuration = excluded.configuration,
    identity_strategy = excluded.identity_strategy,
    updated_at = excluded.updated_at
RETURNING named_task_uuid;

-- name: list_named_tasks
-- Every registered template.
SELECT named_task_uuid, configuration FROM named_tasks ORDER BY namespace, name, version;

-- name: insert_tasks
-- New task rows, one VALUES row per task in place of the marker (each row's trigger writes its
-- transitions: the initial one, or every one in its last_path when the task is inserted after its
-- first pass); a row whose identity_hash exists, or repeats an earlier row's, returns nothing.
INSERT INTO tasks (task_uuid, named_task_uuid, namespace, name, version, state, context,
                   identity_hash, initiator, source_system, reason, tags, priority,
                   correlation_id, parent_correlation_id, requested_at, complete, completed_at,
                   transition_count, state_entered_at, created_at, updated_at, last_event,
                   last_metadata, last_transition_uuid, last_processor_uuid, last_path)
VALUES /* rows */
ON CONFLICT (identity_hash) DO NOTHING
RETURNING task_uuid;

-- name: task_by_identity
-- The task that holds an identity hash.
SELECT task_uuid FROM tasks WHERE identity_hash = :identity_hash;

-- name: get_task
-- One task row.
SELECT * FROM tasks WHERE task_uuid = :task_uuid;

-- name: lock_task
-- The task's current state, read inside the write transaction (SQLite holds the write lock).
SELECT state, namespace, named_task_uuid FROM tasks WHERE task_uuid = :task_uuid;

-- name: insert_step
-- A new workflow step (a trigger writes its initial transition); (task, name) is unique, so a
-- second insert of the same name is a no-op.
INSERT INTO workflow_steps (workflow_step_uuid, task_uuid, name, template_step_name, namespace,
                            state, retryable, max_attempts, attempts, in_process, processed,
                            inputs, priority, transition_count, created_at, updated_at,
                            last_event, last_metadata, last_transition_uuid)
VALUES (:workflow_step_uuid, :task_uuid, :name, :template_step_name, :namespace, 'pending',
        :retryable, :max_attempts, 0, 0, 0, :inputs, :priority, 1, :now, :now,
        'initial', :metadata, :transition_uuid)
ON CONFLICT (task_uuid, name) DO NOTHING;

-- name: insert_edge
-- A dependency edge; duplicates are ignored (find-or-create).
INSERT INTO workflow_step_edges (from_step_uuid, to_step_uuid, name, task_uuid, created_at)
VALUES (:from_step_uuid, :to_step_uuid, :name, :task_uuid, :now)
ON CONFLICT DO NOTHING;

-- name: insert_steps
-- New tasks' steps, in order: the store puts one VALUES row per step in place of the marker (a trigger
-- writes each one's transitions: the initial one, or both listed in its path when it is inserted
-- enqueued); (task, name) is unique.
INSERT INTO workflow_steps (workflow_step_uuid, task_uuid, name, template_step_name, namespace,
                            state, retryable, max_attempts, attempts, in_process, processed,
                            inputs, priority, enqueued_at, transition_count, created_at,
                            updated_at, last_event, last_metadata, last_transition_uuid,
                            last_path)
VALUES /* rows */
ON CONFLICT (task_uuid, name) DO NOTHING;

-- name: insert_edges
-- Dependency edges from a JSON array of [from_step_uuid, to_step_uuid]; duplicates are ignored.
INSERT INTO workflow_step_edges (from_step_uuid, to_step_uuid, name, task_uuid, created_at)
SELECT e.value ->> 0, e.value ->> 1, :name, :task_uuid, :now
FROM json_each(:edges) e
WHERE true
ON CONFLICT DO NOTHING;

-- name: insert_task_edges
-- Dependency edges of several tasks from a JSON array of [from_step_uuid, to_step_uuid, task_uuid];
-- duplicates are ignored.
INSERT INTO workflow_step_edges (from_step_uuid, to_step_uuid, name, task_uuid, created_at)
SELECT e.value ->> 0, e.value ->> 1, :name, e.value ->> 2, :now
FROM json_each(:edges) e
WHERE true
ON CONFLICT DO NOTHING;

-- name: task_steps
-- Every step of a task, oldest first.
SELECT * FROM workflow_steps WHERE task_uuid = :task_uuid ORDER BY created_at, rowid;

-- name: get_step
-- One step row.
SELECT * FROM workflow_steps WHERE workflow_step_uuid = :workflow_step_uuid;

-- name: task_edges
-- Every edge of a task, as step names.
SELECT p.name AS from_name, c.name AS to_name, e.name AS edge_name
FROM workflow_step_edges e
JOIN workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
JOIN workflow_steps c ON c.workflow_step_uuid = e.to_step_uuid
WHERE e.task_uuid = :task_uuid;

-- name: step_overview
-- A task's ready steps (execution.md §5, oldest first) and its step counts by state, in one query:
-- 'ready' rows first, then one 'count' row per state.
SELECT 'ready' AS kind, s.workflow_step_uuid, s.state, 1 AS n, s.created_at, s.seq
FROM workflow_steps_eligible s
WHERE s.task_uuid = :task_uuid AND (s.next_retry_at IS NULL OR s.next_retry_at <= :now)
UNION ALL
SELECT 'count', NULL, state, COUNT(*), NULL, NULL FROM workflow_steps WHERE task_uuid = :task_uuid
GROUP BY state
ORDER BY kind DESC, created_at, seq;

-- name: step_state_counts
-- How many steps of a task are in each state.
SELECT state, COUNT(*) AS n FROM workflow_steps WHERE task_uuid = :task_uuid GROUP BY state;

-- name: bump_task
-- Compare-and-set a task's state (a trigger appends the transition row); no row if it moved first.
-- :steps > 1 records that many transitions at once, listed in :path (JSON array, else NULL).
UPDATE tasks SET state = :to_state, transition_count = transition_count + :steps,
    state_entered_at = :now, updated_at = :now,
    last_event = :event, last_metadata = :metadata, last_transition_uuid = :transition_uuid,
    last_processor_uuid = :processor_uuid, last_path = :path,
    complete = CASE WHEN :to_state = 'complete' THEN 1 ELSE complete END,
    completed_at = CASE WHEN :to_state = 'complete' THEN :now ELSE completed_at END
WHERE task_uuid = :task_uuid AND state = :from_state
RETURNING transition_count;

-- name: insert_result_audit
-- One audit row per stored step result (states.md §3.2).
INSERT INTO workflow_step_result_audit (workflow_step_result_audit_uuid, workflow_step_uuid,
    workflow_step_transition_uuid, task_uuid, recorded_at, worker_uuid, correlation_id, success,
    execution_time_ms, attempt)
VALUES (:uuid, :workflow_step_uuid, :transition_uuid, :task_uuid, :now, :worker_uuid,
        :correlation_id, :success, :execution_time_ms, :attempt);

-- name: claim_candidates_any
-- Enqueued steps of any namespace, by priority, then task age, then enqueue time (workflow_steps_claim_idx)
-- (SQLite: the write lock serialises claims).
SELECT workflow_step_uuid, task_uuid, attempts FROM workflow_steps
WHERE state = 'enqueued'
ORDER BY priority DESC, task_uuid, enqueued_at
LIMIT :limit;

-- name: claim_candidates_in
-- Enqueued steps of the given namespaces (a JSON list), by priority, then task age.
SELECT workflow_step_uuid, task_uuid, attempts FROM workflow_steps
WHERE state = 'enqueued' AND namespace IN (SELECT value FROM json_each(:namespaces))
ORDER BY priority DESC, task_uuid, enqueued_at
LIMIT :limit;

-- name: ancestor_results
-- Results of every processed ancestor of a step (transitive), keyed by step name.
WITH RECURSIVE ancestors(uuid) AS (
    SELECT from_step_uuid FROM workflow_step_edges WHERE to_step_uuid = :workflow_step_uuid
    UNION
    SELECT e.from_step_uuid FROM workflow_step_edges e JOIN ancestors a ON e.to_step_uuid = a.uuid
)
SELECT s.name, s.results FROM workflow_steps s JOIN ancestors a ON s.workflow_step_uuid = a.uuid
WHERE s.processed = 1 AND s.results IS NOT NULL
ORDER BY s.created_at, s.rowid;

-- name: heartbeat
-- Renew a lease, only while the claim is still current.
UPDATE workflow_steps SET lease_expires_at = :lease_expires_at
WHERE workflow_step_uuid = :workflow_step_uuid AND claim_token = :claim_token AND state = 'in_progress';

-- name: save_checkpoint
-- Persist a checkpoint in one UPDATE, fenced by the claim; history is appended in SQL (A10, R4.1).
UPDATE workflow_steps SET
    checkpoint = json_object(
        'cursor', json(:cursor),
        'items_processed', :items_processed,
        'timestamp', :now,
        'accumulated_results', json(:accumulated_results),
        'history', (
            SELECT json_group_array(json(h.value)) FROM json_each(json_insert(
                COALESCE(json_extract(checkpoint, '$.history'), '[]'), '$[#]',
                json_object('cursor', json(:cursor), 'timestamp', :now))) h
            WHERE h.key > json_array_length(COALESCE(json_extract(checkpoint, '$.history'), '[]')) - 100
        )),
    lease_expires_at = :lease_expires_at,
    updated_at = :now
WHERE workflow_step_uuid = :workflow_step_uuid AND claim_token = :claim_token AND state = 'in_progress';

-- name: due_retry_tasks
-- Tasks with a step whose retry backoff has elapsed.
SELECT DISTINCT s.task_uuid FROM workflow_steps s JOIN tasks t ON t.task_uuid = s.task_uuid
WHERE s.state IN ('waiting_for_retry', 'pending') AND s.next_retry_at IS NOT NULL AND s.next_retry_at <= :now
  AND t.state = 'waiting_for_dependencies'
LIMIT :limit;

-- name: expired_leases
-- In-progress steps whose lease has expired (their worker is presumed lost).
SELECT workflow_step_uuid, task_uuid, claim_token, claimed_by FROM workflow_steps
WHERE state = 'in_progress' AND lease_expires_at < :now
LIMIT :limit;

-- name: tasks_in_states
-- Non-terminal tasks the poller should look at, oldest first.
SELECT task_uuid FROM tasks WHERE state IN (SELECT value FROM json_each(:states))
  AND state_entered_at <= :entered_before
ORDER BY priority DESC, created_at LIMIT :limit;

-- name: insert_dlq_entry
-- Open a DLQ entry; at most one pending entry per task (A13).
INSERT INTO dlq_entries (dlq_entry_uuid, task_uuid, original_state, dlq_reason, dlq_timestamp,
                         resolution_status, task_snapshot, metadata, created_at, updated_at)
VALUES (:uuid, :task_uuid, :original_state, :dlq_reason, :now, 'pending', :task_snapshot, :metadata,
        :now, :now)
ON CONFLICT DO NOTHING;

-- name: task_transitions
-- A task's transition rows in order; the most recent is the one at the task's transition_count.
SELECT x.task_uuid AS entity_uuid, x.from_state, x.to_state, x.event, x.sort_key,
       x.sort_key = t.transition_count AS most_recent, x.metadata, x.created_at
FROM task_transitions x JOIN tasks t ON t.task_uuid = x.task_uuid
WHERE x.task_uuid = :task_uuid ORDER BY x.sort_key;

-- name: step_transitions
-- A step's transition rows in order; the most recent is the one at the step's transition_count.
SELECT x.workflow_step_uuid AS entity_uuid, x.from_state, x.to_state, x.event, x.sort_key,
       x.sort_key = s.transition_count AS most_recent, x.metadata, x.created_at
FROM workflow_step_transitions x JOIN workflow_steps s ON s.workflow_step_uuid = x.workflow_step_uuid
WHERE x.workflow_step_uuid = :workflow_step_uuid ORDER BY x.sort_key;

-- name: table_counts
-- Row counts of every table (tests use it to prove bad input wrote nothing).
SELECT 'named_tasks' AS t, COUNT(*) AS n FROM named_tasks
UNION ALL SELECT 'tasks', COUNT(*) FROM tasks
UNION ALL SELECT 'workflow_steps', COUNT(*) FROM workflow_steps
UNION ALL SELECT 'workflow_step_edges', COUNT(*) FROM workflow_step_edges
UNION ALL SELECT 'task_transitions', COUNT(*) FROM task_transitions
UNION ALL SELECT 'workflow_step_transitions', COUNT(*) FROM workflow_step_transitions
UNION ALL SELECT 'workflow_step_result_audit', COUNT(*) FROM workflow_step_result_audit
UNION ALL SELECT 'dlq_entries', COUNT(*) FROM dlq_entries;
