-- Named queries over several rows at once, for a worker's group of claims and results: one
-- statement for K rows instead of K. Each takes its rows as one JSON parameter (an array of
-- objects; JSON-typed values inside it travel as JSON text, so they are stored exactly as the
-- one-row statements store them). The PostgreSQL store has a file with the same names.

-- name: start_steps
-- Claim the steps of :claims ([{step_uuid, from_state, claim_token, transition_uuid}]), each under
-- its own token: enqueued -> in_progress, attempts + 1; a trigger appends each one's transition row.
UPDATE workflow_steps SET state = 'in_progress', transition_count = transition_count + 1,
    last_path = NULL, updated_at = :now, last_event = :event, last_metadata = :metadata,
    last_transition_uuid = c.transition_uuid, in_process = 1, attempts = attempts + 1,
    last_attempted_at = :now, claim_token = c.claim_token, claimed_by = :worker_id,
    lease_expires_at = :lease_expires_at
FROM (SELECT value ->> 'step_uuid' AS step_uuid, value ->> 'from_state' AS from_state,
             value ->> 'claim_token' AS claim_token, value ->> 'transition_uuid' AS transition_uuid
      FROM json_each(:claims)) AS c
WHERE workflow_steps.workflow_step_uuid = c.step_uuid AND workflow_steps.state = c.from_state
RETURNING *;

-- name: ancestor_results_of
-- ancestor_results of each step of :step_uuids (a JSON list), as (root, name, results) rows.
WITH RECURSIVE ancestors(root, uuid) AS (
    SELECT e.to_step_uuid, e.from_step_uuid FROM workflow_step_edges e
    WHERE e.to_step_uuid IN (SELECT value FROM json_each(:step_uuids))
    UNION
    SELECT a.root, e.from_step_uuid FROM ancestors a
    JOIN workflow_step_edges e ON e.to_step_uuid = a.uuid
)
SELECT a.root, s.name, s.results FROM ancestors a
JOIN workflow_steps s ON s.workflow_step_uuid = a.uuid
WHERE s.processed = 1 AND s.results IS NOT NULL
ORDER BY a.root, s.created_at, s.rowid;

-- name: get_tasks
-- The task rows of :task_uuids (a JSON list).
SELECT * FROM tasks WHERE task_uuid IN (SELECT value FROM json_each(:task_uuids));

-- name: lock_tasks
-- lock_task for the tasks of :task_uuids (a JSON list), in task_uuid order.
SELECT task_uuid, state, namespace, named_task_uuid FROM tasks
WHERE task_uuid IN (SELECT value FROM json_each(:task_uuids))
ORDER BY task_uuid;

-- name: complete_fenced_steps
-- Store each result of :results ([{step_uuid, from_state, claim_token, results, now, path,
-- metadata, transition_uuid}]) and complete its step through the two transitions listed in its
-- path, only under the row's own current claim; the steps that moved come back.
UPDATE workflow_steps SET state = :to_state, transition_count = transition_count + 2,
    last_path = c.path, updated_at = c.now, last_event = :event, last_metadata = c.metadata,
    last_transition_uuid = c.transition_uuid, in_process = 0, results = c.results,
    claim_token = NULL, lease_expires_at = NULL, processed = 1, processed_at = c.now
FROM (SELECT value ->> 'step_uuid' AS step_uuid, value ->> 'from_state' AS from_state,
             value ->> 'claim_token' AS claim_token, value ->> 'results' AS results,
             value ->> 'now' AS now, value ->> 'path' AS path, value ->> 'metadata' AS metadata,
             value ->> 'transition_uuid' AS transition_uuid
      FROM json_each(:results)) AS c
WHERE workflow_steps.workflow_step_uuid = c.step_uuid AND workflow_steps.state = c.from_state
  AND workflow_steps.claim_token = c.claim_token
RETURNING workflow_step_uuid;

-- name: insert_result_audits
-- insert_result_audit for every row of :audits (a JSON array of objects named as its parameters).
INSERT INTO workflow_step_result_audit (workflow_step_result_audit_uuid, workflow_step_uuid,
    workflow_step_transition_uuid, task_uuid, recorded_at, worker_uuid, correlation_id, success,
    execution_time_ms, attempt)
SELECT value ->> 'uuid', value ->> 'workflow_step_uuid', value ->> 'transition_uuid',
       value ->> 'task_uuid', value ->> 'now', value ->> 'worker_uuid',
       value ->> 'correlation_id', value ->> 'success', value ->> 'execution_time_ms',
       value ->> 'attempt'
FROM json_each(:audits);

-- name: enqueue_steps
-- Compare-and-set each step of :moves ([{step_uuid, from_state, steps, path, transition_uuid}]) to
-- :to_state, setting enqueued_at; steps > 1 passes through the transitions listed in its path.
UPDATE workflow_steps SET state = :to_state, transition_count = transition_count + c.steps,
    last_path = c.path, updated_at = :now, last_event = :event, last_metadata = :metadata,
    last_transition_uuid = c.transition_uuid, enqueued_at = :now
FROM (SELECT value ->> 'step_uuid' AS step_uuid, value ->> 'from_state' AS from_state,
             value ->> 'steps' AS steps, value ->> 'path' AS path,
             value ->> 'transition_uuid' AS transition_uuid
      FROM json_each(:moves)) AS c
WHERE workflow_steps.workflow_step_uuid = c.step_uuid AND workflow_steps.state = c.from_state
RETURNING workflow_step_uuid;

-- name: bump_tasks
-- bump_task for every task of :paths ([{task_uuid, from_state, to_state, event, metadata,
-- transition_uuid, steps, path}]); the tasks that moved come back.
UPDATE tasks SET state = c.to_state, transition_count = transition_count + c.steps,
    state_entered_at = :now, updated_at = :now,
    last_event = c.event, last_metadata = c.metadata, last_transition_uuid = c.transition_uuid,
    last_processor_uuid = :processor_uuid, last_path = c.path,
    complete = CASE WHEN c.to_state = 'complete' THEN 1 ELSE complete END,
    completed_at = CASE WHEN c.to_state = 'complete' THEN :now ELSE completed_at END
FROM (SELECT value ->> 'task_uuid' AS task_uuid, value ->> 'from_state' AS from_state,
             value ->> 'to_state' AS to_state, value ->> 'event' AS event,
             value ->> 'metadata' AS metadata, value ->> 'transition_uuid' AS transition_uuid,
             value ->> 'steps' AS steps, value ->> 'path' AS path
      FROM json_each(:paths)) AS c
WHERE tasks.task_uuid = c.task_uuid AND tasks.state = c.from_state
RETURNING task_uuid;

-- name: step_overviews
-- step_overview of every task of :task_uuids (a JSON list), each row naming its task.
SELECT 'ready' AS kind, s.task_uuid, s.workflow_step_uuid, s.state, 1 AS n, s.created_at, s.seq
FROM workflow_steps_eligible s
WHERE s.task_uuid IN (SELECT value FROM json_each(:task_uuids))
  AND (s.next_retry_at IS NULL OR s.next_retry_at <= :now)
UNION ALL
SELECT 'count', task_uuid, NULL, state, COUNT(*), NULL, NULL FROM workflow_steps
WHERE task_uuid IN (SELECT value FROM json_each(:task_uuids))
GROUP BY task_uuid, state
ORDER BY kind DESC, created_at, seq;
