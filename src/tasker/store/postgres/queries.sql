-- Named queries for the PostgreSQL store. Each query sits under a "-- name: <name>" header with a
-- one-line comment. Parameters are :named (the store turns them into psycopg's %(named)s once, at
-- load time; a "::" cast is left alone). JSON parameters arrive as JSON text and are cast ::jsonb.
-- The SQLite store has a file with the same names.

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
VALUES (:named_task_uuid, :namespace, :name, :version, :configuration::jsonb, :identity_strategy,
        :now, :now)
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
-- The task's current state, with its row locked until commit: serialises passes over one task.
SELECT state, namespace, named_task_uuid FROM tasks WHERE task_uuid = :task_uuid FOR UPDATE;

-- name: insert_step
-- A new workflow step (a trigger writes its initial transition); (task, name) is unique, so a
-- second insert of the same name is a no-op.
INSERT INTO workflow_steps (workflow_step_uuid, task_uuid, name, template_step_name, namespace,
                            state, retryable, max_attempts, attempts, in_process, processed,
                            inputs, priority, transition_count, created_at, updated_at,
                            last_event, last_metadata, last_transition_uuid)
VALUES (:workflow_step_uuid, :task_uuid, :name, :template_step_name, :namespace, 'pending',
        :retryable, :max_attempts, 0, false, false, :inputs::jsonb, :priority, 1, :now, :now,
        'initial', :metadata::jsonb, :transition_uuid)
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

-- name: insert_steps_unnest
-- insert_steps with one array parameter per column instead of a VALUES row per step: the same
-- text for any number of steps, so psycopg converts it once and prepares it (a VALUES row per
-- step binds 15 parameters a step, and past 50 parameters psycopg parses the text again at every
-- run: 0.6 ms of the caller's CPU per 4-step task). A step :enqueue'd is inserted enqueued with
-- both transitions in its :paths; the others pending, their one transition :transition_uuids'.
INSERT INTO workflow_steps (workflow_step_uuid, task_uuid, name, template_step_name, namespace,
                            state, retryable, max_attempts, attempts, in_process, processed,
                            inputs, priority, enqueued_at, transition_count, created_at,
                            updated_at, last_event, last_metadata, last_transition_uuid,
                            last_path)
SELECT r.step_uuid, r.task_uuid, r.name, r.template_step_name, r.namespace,
       CASE WHEN r.enqueue THEN 'enqueued' ELSE 'pending' END, r.retryable, r.max_attempts, 0,
       false, false, r.inputs::jsonb, r.priority,
       CASE WHEN r.enqueue THEN :now::timestamptz END, CASE WHEN r.enqueue THEN 2 ELSE 1 END,
       :now, :now, CASE WHEN r.enqueue THEN 'enqueue' ELSE 'initial' END,
       CASE WHEN r.enqueue THEN :enqueue_metadata::jsonb ELSE :initial_metadata::jsonb END,
       r.transition_uuid, r.path::jsonb
FROM unnest(:step_uuids::text[], :task_uuids::text[], :names::text[], :template_names::text[],
            :namespaces::text[], :retryable::boolean[], :max_attempts::integer[],
            :inputs::text[], :priorities::integer[], :enqueue::boolean[],
            :transition_uuids::text[], :paths::text[])
     AS r(step_uuid, task_uuid, name, template_step_name, namespace, retryable, max_attempts,
          inputs, priority, enqueue, transition_uuid, path)
ON CONFLICT (task_uuid, name) DO NOTHING;

-- name: insert_edges
-- Dependency edges from a JSON array of [from_step_uuid, to_step_uuid]; duplicates are ignored.
INSERT INTO workflow_step_edges (from_step_uuid, to_step_uuid, name, task_uuid, created_at)
SELECT e.value ->> 0, e.value ->> 1, :name, :task_uuid, :now
FROM jsonb_array_elements(:edges::jsonb) AS e
ON CONFLICT DO NOTHING;

-- name: insert_task_edges
-- Dependency edges of several tasks from a JSON array of [from_step_uuid, to_step_uuid, task_uuid];
-- duplicates are ignored.
INSERT INTO workflow_step_edges (from_step_uuid, to_step_uuid, name, task_uuid, created_at)
SELECT e.value ->> 0, e.value ->> 1, :name, e.value ->> 2, :now
FROM jsonb_array_elements(:edges::jsonb) AS e
ON CONFLICT DO NOTHING;

-- name: task_steps
-- Every step of a task, oldest first.
SELECT * FROM workflow_steps WHERE task_uuid = :task_uuid ORDER BY created_at, step_seq;

-- name: task_steps_in_states
-- task_steps if the task is in one of :states (a list), else nothing (a task view of a task
-- that has not settled yet, read in the same round trip as the task).
SELECT s.* FROM workflow_steps s
WHERE s.task_uuid = :task_uuid
  AND EXISTS (SELECT 1 FROM tasks t
              WHERE t.task_uuid = :task_uuid AND t.state = ANY (:states::text[]))
ORDER BY s.created_at, s.step_seq;

-- name: get_step
-- One step row.
SELECT * FROM workflow_steps WHERE workflow_step_uuid = :workflow_step_uuid;

-- name: task_edges
-- Every edge of a task, as step names. Found from the task's steps (edges have no index on
-- task_uuid, so filtering them by it reads them all; ADR 0024).
SELECT p.name AS from_name, c.name AS to_name, e.name AS edge_name
FROM workflow_steps c
JOIN workflow_step_edges e ON e.to_step_uuid = c.workflow_step_uuid
JOIN workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
WHERE c.task_uuid = :task_uuid;

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
-- The state is compared with IS NOT DISTINCT FROM (state is NOT NULL, so the same test as =)
-- because no index serves it: a plan made while tasks is small cannot then prefer
-- tasks_state_idx, whose scan grows with the tasks in that state, to the primary key (ADR 0024).
UPDATE tasks SET state = :to_state, transition_count = transition_count + :steps,
    state_entered_at = :now, updated_at = :now,
    last_event = :event, last_metadata = :metadata::jsonb, last_transition_uuid = :transition_uuid,
    last_processor_uuid = :processor_uuid, last_path = CAST(:path AS jsonb),
    complete = CASE WHEN :to_state = 'complete' THEN true ELSE complete END,
    completed_at = CASE WHEN :to_state = 'complete' THEN :now ELSE completed_at END
WHERE task_uuid = :task_uuid AND state IS NOT DISTINCT FROM :from_state
RETURNING transition_count;

-- name: bump_held_task
-- bump_task for a task whose row this transaction locked: nobody else can move it, so the store does
-- not wait for the result; finding the task in another state (a bug) fails the statement. (IS NOT
-- DISTINCT FROM: see bump_task.)
WITH moved AS (
    UPDATE tasks SET state = :to_state, transition_count = transition_count + :steps,
        state_entered_at = :now, updated_at = :now,
        last_event = :event, last_metadata = :metadata::jsonb, last_transition_uuid = :transition_uuid,
        last_processor_uuid = :processor_uuid, last_path = CAST(:path AS jsonb),
        complete = CASE WHEN :to_state = 'complete' THEN true ELSE complete END,
        completed_at = CASE WHEN :to_state = 'complete' THEN :now ELSE completed_at END
    WHERE task_uuid = :task_uuid AND state IS NOT DISTINCT FROM :from_state
    RETURNING 1
)
SELECT tasker_fail('task ' || :task_uuid || ' was not in state ' || :from_state
                   || ' under this transaction''s own lock')
WHERE NOT EXISTS (SELECT 1 FROM moved);

-- name: insert_result_audit
-- One audit row per stored step result (states.md §3.2).
INSERT INTO workflow_step_result_audit (workflow_step_result_audit_uuid, workflow_step_uuid,
    workflow_step_transition_uuid, task_uuid, recorded_at, worker_uuid, correlation_id, success,
    execution_time_ms, attempt)
VALUES (:uuid, :workflow_step_uuid, :transition_uuid, :task_uuid, :now, :worker_uuid,
        :correlation_id, :success, :execution_time_ms, :attempt);

-- name: claim_candidates_any
-- Enqueued steps of any namespace, by priority, then task age, then enqueue time (workflow_steps_claim_idx);
-- rows another claimer holds are skipped.
SELECT workflow_step_uuid, task_uuid, attempts FROM workflow_steps
WHERE state = 'enqueued'
ORDER BY priority DESC, task_uuid, enqueued_at
LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: claim_candidates_in
-- Enqueued steps of the given namespaces (a JSON list), by priority, then task age; held rows skipped.
SELECT workflow_step_uuid, task_uuid, attempts FROM workflow_steps
WHERE state = 'enqueued' AND namespace IN (SELECT jsonb_array_elements_text(:namespaces::jsonb))
ORDER BY priority DESC, task_uuid, enqueued_at
LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: ancestor_results
-- Results of every processed ancestor of a step (transitive), keyed by step name. The ancestors are
-- looked up by primary key (= ANY of their array): a join let the planner hash the whole
-- workflow_steps table on every call while it had no statistics (any young database).
WITH RECURSIVE ancestors(uuid) AS (
    SELECT from_step_uuid FROM workflow_step_edges WHERE to_step_uuid = :workflow_step_uuid
    UNION
    SELECT e.from_step_uuid FROM ancestors a
    CROSS JOIN LATERAL (SELECT from_step_uuid FROM workflow_step_edges
                        WHERE to_step_uuid = a.uuid OFFSET 0) e  -- by index: ADR 0024
)
SELECT s.name, s.results FROM workflow_steps s
WHERE s.workflow_step_uuid = ANY (ARRAY(SELECT uuid FROM ancestors))
  AND s.processed AND s.results IS NOT NULL
ORDER BY s.created_at, s.step_seq;

-- name: heartbeat
-- Renew a lease, only while the claim is still current. (IS NOT DISTINCT FROM, as in bump_task:
-- so that no plan can prefer workflow_steps_lease_idx, all running steps, to the primary key.)
UPDATE workflow_steps SET lease_expires_at = :lease_expires_at
WHERE workflow_step_uuid = :workflow_step_uuid AND claim_token = :claim_token
  AND state IS NOT DISTINCT FROM 'in_progress';

-- name: save_checkpoint
-- Persist a checkpoint in one UPDATE, fenced by the claim; history is appended in SQL, last 100 kept (R4.1).
UPDATE workflow_steps SET
    checkpoint = jsonb_build_object(
        'cursor', :cursor::jsonb,
        'items_processed', :items_processed,
        'timestamp', to_char(:now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'accumulated_results', :accumulated_results::jsonb,
        'history', (
            SELECT COALESCE(jsonb_agg(h.entry ORDER BY h.ord), '[]'::jsonb)
            FROM jsonb_array_elements(
                     CASE WHEN jsonb_typeof(checkpoint -> 'history') = 'array'
                          THEN checkpoint -> 'history' ELSE '[]'::jsonb END
                     || jsonb_build_array(jsonb_build_object(
                            'cursor', :cursor::jsonb,
                            'timestamp', to_char(:now AT TIME ZONE 'UTC',
                                                 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
                 WITH ORDINALITY AS h(entry, ord)
            WHERE h.ord > (CASE WHEN jsonb_typeof(checkpoint -> 'history') = 'array'
                                THEN jsonb_array_length(checkpoint -> 'history') ELSE 0 END) + 1 - 100
        )),
    lease_expires_at = :lease_expires_at,
    updated_at = :now
WHERE workflow_step_uuid = :workflow_step_uuid AND claim_token = :claim_token
  AND state IS NOT DISTINCT FROM 'in_progress';  -- as in heartbeat

-- name: due_retry_tasks
-- Tasks with a step whose retry backoff has elapsed.
SELECT DISTINCT s.task_uuid FROM workflow_steps s JOIN tasks t ON t.task_uuid = s.task_uuid
WHERE s.state IN ('waiting_for_retry', 'pending') AND s.next_retry_at IS NOT NULL AND s.next_retry_at <= :now
  AND t.state = 'waiting_for_dependencies'
LIMIT :limit;

-- name: expired_leases
-- In-progress steps whose lease has expired (their worker is presumed lost), in task order so that
-- sweepers lock tasks in the same order.
SELECT workflow_step_uuid, task_uuid, claim_token, claimed_by FROM workflow_steps
WHERE state = 'in_progress' AND lease_expires_at < :now
ORDER BY task_uuid, workflow_step_uuid
LIMIT :limit;

-- name: tasks_in_states
-- Non-terminal tasks the poller should look at, oldest first. (= ANY of an array, not IN of a set:
-- the states are then the index's condition, not a hash probed for every task; ADR 0024.)
SELECT task_uuid FROM tasks
WHERE state = ANY (ARRAY(SELECT jsonb_array_elements_text(:states::jsonb)))
  AND state_entered_at <= :entered_before
ORDER BY priority DESC, created_at LIMIT :limit;

-- name: insert_dlq_entry
-- Open a DLQ entry; at most one pending entry per task (A13).
INSERT INTO dlq_entries (dlq_entry_uuid, task_uuid, original_state, dlq_reason, dlq_timestamp,
                         resolution_status, task_snapshot, metadata, created_at, updated_at)
VALUES (:uuid, :task_uuid, :original_state, :dlq_reason, :now, 'pending', :task_snapshot::jsonb,
        :metadata::jsonb, :now, :now)
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
