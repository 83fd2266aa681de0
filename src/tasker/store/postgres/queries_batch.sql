-- Named queries over several rows at once, for a worker's group of claims and results: one
-- statement for K rows instead of K. Each takes its rows as one JSON parameter (an array of
-- objects read with jsonb_to_recordset; JSON-typed values inside it travel as JSON text), and
-- their keys again as a text array (:keys): "= ANY (:keys)" lets the planner look the rows up by
-- primary key and estimate how few they are, even without statistics (see ancestor_results_of).
-- The SQLite store has a file with the same names.

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
  AND s.workflow_step_uuid = ANY (:keys::text[])
RETURNING s.*;

-- name: ancestor_results_of
-- ancestor_results of each step of :step_uuids (a text array), as (root, name, results) rows. The
-- keys travel as an array, not JSON: the planner then estimates the few rows they match, where a
-- set it cannot see into made it expect whole tables, and JIT-compile the query (100-200 ms).
WITH RECURSIVE ancestors(root, uuid) AS (
    SELECT e.to_step_uuid, e.from_step_uuid FROM workflow_step_edges e
    WHERE e.to_step_uuid = ANY (:step_uuids::text[])
    UNION
    SELECT a.root, e.from_step_uuid FROM ancestors a
    CROSS JOIN LATERAL (SELECT from_step_uuid FROM workflow_step_edges
                        WHERE to_step_uuid = a.uuid OFFSET 0) e  -- by index: ADR 0024
)
SELECT a.root, s.name, s.results
FROM workflow_steps s JOIN ancestors a ON a.uuid = s.workflow_step_uuid
WHERE s.workflow_step_uuid = ANY (ARRAY(SELECT uuid FROM ancestors))
  AND s.processed AND s.results IS NOT NULL
ORDER BY a.root, s.created_at, s.step_seq;

-- name: get_tasks
-- The task rows of :task_uuids (a JSON list).
SELECT * FROM tasks
WHERE task_uuid = ANY (:task_uuids::text[]);

-- name: lock_tasks
-- lock_task for the tasks of :task_uuids (a JSON list): rows are locked after the sort, so in
-- task_uuid order, the order every transaction locks tasks in.
SELECT task_uuid, state, namespace, named_task_uuid FROM tasks
WHERE task_uuid = ANY (:task_uuids::text[])
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
  AND s.workflow_step_uuid = ANY (:keys::text[])
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

-- name: enqueue_steps
-- Compare-and-set each step of :moves ([{step_uuid, from_state, steps, path, transition_uuid}]) to
-- :to_state, setting enqueued_at; steps > 1 passes through the transitions listed in its path.
UPDATE workflow_steps s SET state = :to_state, transition_count = s.transition_count + c.steps,
    last_path = c.path::jsonb, updated_at = :now, last_event = :event,
    last_metadata = :metadata::jsonb, last_transition_uuid = c.transition_uuid, enqueued_at = :now
FROM jsonb_to_recordset(:moves::jsonb)
     AS c(step_uuid text, from_state text, steps integer, path text, transition_uuid text)
WHERE s.workflow_step_uuid = c.step_uuid AND s.state = c.from_state
  AND s.workflow_step_uuid = ANY (:keys::text[])
RETURNING s.workflow_step_uuid;

-- name: bump_tasks
-- bump_task for every task of :paths ([{task_uuid, from_state, to_state, event, metadata,
-- transition_uuid, steps, path}]); the tasks that moved come back.
UPDATE tasks t SET state = c.to_state, transition_count = t.transition_count + c.steps,
    state_entered_at = :now, updated_at = :now,
    last_event = c.event, last_metadata = c.metadata::jsonb,
    last_transition_uuid = c.transition_uuid, last_processor_uuid = :processor_uuid,
    last_path = c.path::jsonb,
    complete = CASE WHEN c.to_state = 'complete' THEN true ELSE t.complete END,
    completed_at = CASE WHEN c.to_state = 'complete' THEN :now ELSE t.completed_at END
FROM jsonb_to_recordset(:paths::jsonb)
     AS c(task_uuid text, from_state text, to_state text, event text, metadata text,
          transition_uuid text, steps integer, path text)
WHERE t.task_uuid = c.task_uuid AND t.state = c.from_state
  AND t.task_uuid = ANY (:keys::text[])
RETURNING t.task_uuid;

-- name: bump_held_tasks
-- bump_tasks for tasks whose rows this transaction locked (see bump_held_task): the store does not
-- wait for the result; a task found in another state (a bug) fails the statement.
WITH moved AS (
    UPDATE tasks t SET state = c.to_state, transition_count = t.transition_count + c.steps,
        state_entered_at = :now, updated_at = :now,
        last_event = c.event, last_metadata = c.metadata::jsonb,
        last_transition_uuid = c.transition_uuid, last_processor_uuid = :processor_uuid,
        last_path = c.path::jsonb,
        complete = CASE WHEN c.to_state = 'complete' THEN true ELSE t.complete END,
        completed_at = CASE WHEN c.to_state = 'complete' THEN :now ELSE t.completed_at END
    FROM jsonb_to_recordset(:paths::jsonb)
         AS c(task_uuid text, from_state text, to_state text, event text, metadata text,
              transition_uuid text, steps integer, path text)
    WHERE t.task_uuid = c.task_uuid AND t.state = c.from_state
      AND t.task_uuid = ANY (:keys::text[])
    RETURNING 1
)
SELECT tasker_fail('of ' || :expected || ' tasks, only ' || (SELECT COUNT(*) FROM moved)
                   || ' were in the states this transaction''s own locks held them in')
WHERE (SELECT COUNT(*) FROM moved) <> :expected;

-- name: step_overviews
-- step_overview of every task of :task_uuids (a JSON list), each row naming its task.
SELECT 'ready' AS kind, s.task_uuid, s.workflow_step_uuid, s.state, 1 AS n, s.created_at, s.seq
FROM workflow_steps_eligible s
WHERE s.task_uuid = ANY (:task_uuids::text[])
  AND (s.next_retry_at IS NULL OR s.next_retry_at <= :now)
UNION ALL
SELECT 'count', task_uuid, NULL, state, COUNT(*), NULL, NULL FROM workflow_steps
WHERE task_uuid = ANY (:task_uuids::text[])
GROUP BY task_uuid, state
ORDER BY kind DESC, created_at, seq;

-- name: claim_steps_any
-- claim_candidates_any and start_steps in one statement, with each claimed step's ancestor_results
-- (a JSON array of [name, results] pairs, in ancestor_results' order): up to :limit enqueued steps
-- of any namespace, skipping rows another claimer holds, each moved enqueued -> in_progress under
-- its own claim token. FOR UPDATE forbids a window function in the same SELECT, so the candidates
-- are numbered in a second one; candidate n takes :tokens[n] and :transition_uuids[n] (arrays of
-- at least :limit). The UPDATE looks the candidates up by primary key only: they are locked and
-- were enqueued when locked, and a state predicate let the planner scan the partial queue index
-- for every enqueued step (see start_steps). The ancestors of all the claimed steps are read
-- once, in the same statement (ancestor_results_of): the claimed rows are not among them, and
-- steps this transaction wrote earlier are visible to it. A step without parents, usually the
-- first of its task that a worker claims, also brings its task's row (root_task_row, as JSON
-- text), which the claimer would read next (get_tasks); a worker keeps the rows of tasks it
-- claimed, so later steps don't. Each claimed step also brings its children (a JSON array of
-- [uuid, number of parents], in creation order), whether it is its task's last (no children,
-- every other step complete or resolved; the two range scans of the (task_uuid, state) index
-- skip the complete ones) and its task's named_task_uuid: what predicting the pass of its
-- success takes (ADR 0023). claim_steps_in, the same for the
-- namespaces of :namespaces (a JSON list), is this text with "/* namespaces */" replaced by that
-- filter (PostgresStore).
WITH RECURSIVE candidates AS MATERIALIZED (
    SELECT workflow_step_uuid FROM workflow_steps
    WHERE state = 'enqueued' /* namespaces */
    ORDER BY priority DESC, task_uuid, enqueued_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
numbered AS MATERIALIZED (
    SELECT workflow_step_uuid, row_number() OVER () AS n FROM candidates
),
claimed AS (
    UPDATE workflow_steps s SET state = 'in_progress', transition_count = s.transition_count + 1,
        last_path = NULL, updated_at = :now, last_event = :event,
        last_metadata = :metadata::jsonb,
        last_transition_uuid = (:transition_uuids::text[])[c.n], in_process = true,
        attempts = s.attempts + 1, last_attempted_at = :now,
        claim_token = (:tokens::text[])[c.n], claimed_by = :worker_id,
        lease_expires_at = :lease_expires_at
    FROM numbered c
    WHERE s.workflow_step_uuid = c.workflow_step_uuid
      -- the claimed rows by key, whatever the plan makes of the candidates' estimated count
      AND s.workflow_step_uuid = ANY (ARRAY(SELECT workflow_step_uuid FROM numbered))
    RETURNING s.*, c.n AS claim_n
),
ancestors(root, uuid) AS (
    SELECT c.workflow_step_uuid, e.from_step_uuid FROM numbered c
    CROSS JOIN LATERAL (SELECT from_step_uuid FROM workflow_step_edges
                        WHERE to_step_uuid = c.workflow_step_uuid OFFSET 0) e
    UNION
    SELECT a.root, e.from_step_uuid FROM ancestors a
    CROSS JOIN LATERAL (SELECT from_step_uuid FROM workflow_step_edges
                        WHERE to_step_uuid = a.uuid OFFSET 0) e  -- by index: ADR 0024
),
ancestor_results AS (
    SELECT a.root,
           json_agg(json_build_array(p.name, p.results) ORDER BY p.created_at, p.step_seq)
               AS results
    FROM workflow_steps p JOIN ancestors a ON a.uuid = p.workflow_step_uuid
    WHERE p.workflow_step_uuid = ANY (ARRAY(SELECT uuid FROM ancestors))
      AND p.processed AND p.results IS NOT NULL
    GROUP BY a.root
),
children AS (
    SELECT k.root, json_agg(json_build_array(k.uuid, k.parents) ORDER BY k.created_at, k.seq)
               AS children
    FROM (
        SELECT DISTINCT c.workflow_step_uuid AS root, s.workflow_step_uuid AS uuid,
               s.created_at, s.step_seq AS seq,
               (SELECT COUNT(DISTINCT pe.from_step_uuid) FROM workflow_step_edges pe
                WHERE pe.to_step_uuid = s.workflow_step_uuid) AS parents
        FROM numbered c
        CROSS JOIN LATERAL (SELECT to_step_uuid FROM workflow_step_edges
                            WHERE from_step_uuid = c.workflow_step_uuid OFFSET 0) ce
        JOIN workflow_steps s ON s.workflow_step_uuid = ce.to_step_uuid
    ) k
    GROUP BY k.root
)
SELECT c.*, r.results AS ancestor_results,
    CASE WHEN NOT EXISTS (SELECT 1 FROM ancestors a WHERE a.root = c.workflow_step_uuid)
         THEN (SELECT to_jsonb(t)::text FROM tasks t WHERE t.task_uuid = c.task_uuid)
    END AS root_task_row,
    k.children,
    -- OFFSET 0: each task's own steps by index, never one hash of every unfinished step
    k.children IS NULL
    AND NOT EXISTS (SELECT 1 FROM workflow_steps o
                    WHERE o.task_uuid = c.task_uuid AND o.state < 'complete' OFFSET 0)
    AND NOT EXISTS (SELECT 1 FROM workflow_steps o
                    WHERE o.task_uuid = c.task_uuid AND o.state > 'complete'
                      AND o.state <> 'resolved_manually'
                      AND o.workflow_step_uuid <> c.workflow_step_uuid OFFSET 0) AS last,
    (SELECT t.named_task_uuid FROM tasks t WHERE t.task_uuid = c.task_uuid) AS named_task_uuid
FROM claimed c LEFT JOIN ancestor_results r ON r.root = c.workflow_step_uuid
LEFT JOIN children k ON k.root = c.workflow_step_uuid
ORDER BY c.claim_n;

-- name: enqueue_held_steps
-- enqueue_steps for steps this transaction read as ready (step_overview) while holding their task's
-- row lock: pending or waiting for a retry, states that only a pass under that lock changes, so
-- the store does not wait for the result (see bump_held_task); a step found in another state (a
-- bug) fails the statement. :expected is the number of rows of :moves.
WITH moved AS (
    UPDATE workflow_steps s SET state = :to_state,
        transition_count = s.transition_count + c.steps, last_path = c.path::jsonb,
        updated_at = :now, last_event = :event, last_metadata = :metadata::jsonb,
        last_transition_uuid = c.transition_uuid, enqueued_at = :now
    FROM jsonb_to_recordset(:moves::jsonb)
         AS c(step_uuid text, from_state text, steps integer, path text, transition_uuid text)
    WHERE s.workflow_step_uuid = c.step_uuid AND s.state = c.from_state
      AND s.workflow_step_uuid = ANY (:keys::text[])
    RETURNING 1
)
SELECT tasker_fail('of ' || :expected || ' steps ready under this transaction''s own task locks,'
                   || ' only ' || (SELECT COUNT(*) FROM moved) || ' were still in those states')
WHERE (SELECT COUNT(*) FROM moved) <> :expected;

-- name: complete_fenced_steps_audited
-- complete_fenced_steps, and in the same statement the result audit row of each step that moved
-- (insert_result_audits; the audit row names its step's via transition, :results' via_uuid). A
-- result whose claim was superseded moves nothing and gets no audit row.
WITH moved AS (
    UPDATE workflow_steps s SET state = :to_state, transition_count = s.transition_count + 2,
        last_path = c.path::jsonb, updated_at = c.now, last_event = :event,
        last_metadata = c.metadata::jsonb, last_transition_uuid = c.transition_uuid,
        in_process = false, results = c.results::jsonb, claim_token = NULL,
        lease_expires_at = NULL, processed = true, processed_at = c.now
    FROM jsonb_to_recordset(:results::jsonb)
         AS c(step_uuid text, from_state text, claim_token text, results text, now timestamptz,
              path text, metadata text, transition_uuid text, task_uuid text, via_uuid text,
              audit_uuid text, worker_uuid text, correlation_id text,
              execution_time_ms double precision, attempt integer)
    WHERE s.workflow_step_uuid = c.step_uuid AND s.state = c.from_state
      AND s.claim_token = c.claim_token
      AND s.workflow_step_uuid = ANY (:keys::text[])
    RETURNING s.workflow_step_uuid, c.task_uuid, c.via_uuid, c.audit_uuid, c.now, c.worker_uuid,
              c.correlation_id, c.execution_time_ms, c.attempt
),
audited AS (
    INSERT INTO workflow_step_result_audit (workflow_step_result_audit_uuid, workflow_step_uuid,
        workflow_step_transition_uuid, task_uuid, recorded_at, worker_uuid, correlation_id,
        success, execution_time_ms, attempt)
    SELECT audit_uuid, workflow_step_uuid, via_uuid, task_uuid, now, worker_uuid, correlation_id,
           true, execution_time_ms, attempt
    FROM moved
)
SELECT workflow_step_uuid, via_uuid FROM moved;

-- name: check_tasks_inserted
-- After insert_tasks of a creation that predicted every task new (ADR 0023): fails the
-- transaction with SQLSTATE TK001 unless all :expected tasks of :task_uuids (a JSON list) were
-- inserted (an identity existed, and ON CONFLICT left a row out); the caller redoes the
-- creation the ordinary way, which names the task that holds the identity.
SELECT tasker_mispredicted('a task of this creation has an identity that exists')
WHERE (SELECT COUNT(*) FROM tasks WHERE task_uuid = ANY (:task_uuids::text[])) <> :expected;

-- name: check_predicted_passes
-- The premises of each predicted pass of :passes ([{task_uuid, step_uuid, transition_uuid,
-- ready, last}]) once its step's result was stored, checked under the task's lock (ADR 0023):
-- the task still steps_in_process, the step stored by this transaction (its last transition is
-- transition_uuid), no step of the task in error, and its ready steps (as step_overview reads
-- them at :now, in that order) exactly ready (a JSON array of step uuids), all pending; with
-- last (ready empty), every step of the task complete or resolved. A premise that fails fails
-- the transaction with SQLSTATE TK001 (tasker_mispredicted), and the worker redoes it the
-- ordinary way. Each premise is a scalar subquery of one pass (LIMIT 1 where it asks whether
-- a row exists), so the planner looks its rows up by key for each pass instead of hashing a
-- whole table; the task and the step by primary key, whatever the statistics say of states.
SELECT tasker_mispredicted('the predicted pass of task ' || p.task_uuid || ' did not hold')
FROM jsonb_to_recordset(:passes::jsonb)
     AS p(task_uuid text, step_uuid text, transition_uuid text, ready jsonb, last boolean)
WHERE (SELECT t.state FROM tasks t WHERE t.task_uuid = p.task_uuid)
      IS DISTINCT FROM 'steps_in_process'
   OR (SELECT d.state = 'complete' AND d.last_transition_uuid = p.transition_uuid
       FROM workflow_steps d WHERE d.workflow_step_uuid = p.step_uuid) IS NOT TRUE
   OR (SELECT 1 FROM workflow_steps e
       WHERE e.task_uuid = p.task_uuid AND e.state = 'error' LIMIT 1) IS NOT NULL
   OR (SELECT COALESCE(jsonb_agg(CASE WHEN s.state = 'pending' THEN s.workflow_step_uuid END
                                 ORDER BY s.created_at, s.seq), '[]'::jsonb)
       FROM workflow_steps_eligible s
       WHERE s.task_uuid = p.task_uuid AND (s.next_retry_at IS NULL OR s.next_retry_at <= :now))
      IS DISTINCT FROM p.ready
   OR (p.last AND (SELECT 1 FROM workflow_steps u
                   WHERE u.task_uuid = p.task_uuid
                     AND u.state NOT IN ('complete', 'resolved_manually') LIMIT 1) IS NOT NULL);
