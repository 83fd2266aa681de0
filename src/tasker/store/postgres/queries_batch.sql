-- Named queries over several rows at once, for a worker's group of claims and results: one
-- statement for K rows instead of K. Each takes its rows as one JSON parameter (an array of
-- objects read with jsonb_to_recordset; JSON-typed values inside it travel as JSON text). Rows
-- of workflow_steps are reached through "= ANY (ARRAY(...))" of their keys, so the planner
-- looks them up by primary key even without statistics (see ancestor_results). The SQLite store
-- has a file with the same names.

-- name: start_steps
-- Claim the steps of :claims ([{step_uuid, from_state, claim_token, transition_uuid}]), each under
-- its own token: enqueued -> in_progress, attempts + 1; a trigger appends each one's transition
-- row. The state is compared with from_state ('enqueued'), not a literal: a literal lets the
-- planner pick the partial queue index and scan every enqueued step.
UPDATE workflow_steps s SET state = 'in_progress', transition_count = s.transition_count + 1,
    last_path = NULL, updated_at = :now, last_event = :event, last_metadata = :metadata::jsonb,
    last_transition_uuid = c.transition_uuid, in_process = true, attempts = s.attempts + 1,
    last_attempted_at = :now, claim_token = c.claim_token, claimed_by = :worker_id,
    lease_expires_at = :lease_expires_at
FROM jsonb_to_recordset(:claims::jsonb)
     AS c(step_uuid text, from_state text, claim_token text, transition_uuid text)
WHERE s.workflow_step_uuid = c.step_uuid AND s.state = c.from_state
  AND s.workflow_step_uuid = ANY (ARRAY(SELECT x ->> 'step_uuid'
                                        FROM jsonb_array_elements(:claims::jsonb) AS x))
RETURNING s.*;

-- name: ancestor_results_of
-- ancestor_results of each step of :step_uuids (a JSON list), as (root, name, results) rows.
WITH RECURSIVE ancestors(root, uuid) AS (
    SELECT e.to_step_uuid, e.from_step_uuid FROM workflow_step_edges e
    WHERE e.to_step_uuid = ANY (ARRAY(SELECT jsonb_array_elements_text(:step_uuids::jsonb)))
    UNION
    -- OFFSET 0 keeps the lookup from being flattened into a join that hashes every edge.
    SELECT a.root, e.from_step_uuid FROM ancestors a
    CROSS JOIN LATERAL (SELECT x.from_step_uuid FROM workflow_step_edges x
                        WHERE x.to_step_uuid = a.uuid OFFSET 0) e
)
SELECT a.root, s.name, s.results
FROM ancestors a
CROSS JOIN LATERAL (
    -- LIMIT keeps the subquery from being flattened into a join the planner may hash.
    SELECT p.name, p.results, p.created_at, p.step_seq FROM workflow_steps p
    WHERE p.workflow_step_uuid = a.uuid AND p.processed AND p.results IS NOT NULL
    LIMIT 1
) s
ORDER BY a.root, s.created_at, s.step_seq;

-- name: get_tasks
-- The task rows of :task_uuids (a JSON list).
SELECT * FROM tasks
WHERE task_uuid = ANY (ARRAY(SELECT jsonb_array_elements_text(:task_uuids::jsonb)));

-- name: lock_tasks
-- lock_task for the tasks of :task_uuids (a JSON list): rows are locked after the sort, so in
-- task_uuid order, the order every transaction locks tasks in.
SELECT task_uuid, state, namespace, named_task_uuid FROM tasks
WHERE task_uuid = ANY (ARRAY(SELECT jsonb_array_elements_text(:task_uuids::jsonb)))
ORDER BY task_uuid
FOR UPDATE;

-- name: complete_fenced_steps
-- Store each result of :results ([{step_uuid, from_state, claim_token, results, now, path,
-- metadata, transition_uuid}]) and complete its step through the two transitions listed in its
-- path, only under the row's own current claim; the steps that moved come back.
UPDATE workflow_steps s SET state = :to_state, transition_count = s.transition_count + 2,
    last_path = c.path::jsonb, updated_at = c.now, last_event = :event,
    last_metadata = c.metadata::jsonb, last_transition_uuid = c.transition_uuid,
    in_process = false, results = c.results::jsonb, claim_token = NULL, lease_expires_at = NULL,
    processed = true, processed_at = c.now
FROM jsonb_to_recordset(:results::jsonb)
     AS c(step_uuid text, from_state text, claim_token text, results text, now timestamptz,
          path text, metadata text, transition_uuid text)
WHERE s.workflow_step_uuid = c.step_uuid AND s.state = c.from_state
  AND s.claim_token = c.claim_token
  AND s.workflow_step_uuid = ANY (ARRAY(SELECT x ->> 'step_uuid'
                                        FROM jsonb_array_elements(:results::jsonb) AS x))
RETURNING s.workflow_step_uuid;

-- name: insert_result_audits
-- insert_result_audit for every row of :audits (a JSON array of objects named as its parameters).
INSERT INTO workflow_step_result_audit (workflow_step_result_audit_uuid, workflow_step_uuid,
    workflow_step_transition_uuid, task_uuid, recorded_at, worker_uuid, correlation_id, success,
    execution_time_ms, attempt)
SELECT uuid, workflow_step_uuid, transition_uuid, task_uuid, now, worker_uuid, correlation_id,
       success, execution_time_ms, attempt
FROM jsonb_to_recordset(:audits::jsonb)
     AS c(uuid text, workflow_step_uuid text, transition_uuid text, task_uuid text,
          now timestamptz, worker_uuid text, correlation_id text, success boolean,
          execution_time_ms double precision, attempt integer);
