-- The readiness rule of execution.md §5 in one place: the steps a pass would enqueue once their
-- retry time has come (pending or waiting for a retry, not processed nor running, attempts left,
-- every parent complete or resolved manually). The time is a parameter, so queries add
-- `next_retry_at IS NULL OR next_retry_at <= :now`. Only the columns they read, so that a later
-- migration of another workflow_steps column need not recreate the view.
CREATE VIEW workflow_steps_eligible AS
SELECT s.rowid AS seq, s.workflow_step_uuid, s.task_uuid, s.state, s.created_at, s.next_retry_at
FROM workflow_steps s
WHERE s.state IN ('pending', 'waiting_for_retry')
  AND s.processed = 0 AND s.in_process = 0
  AND (s.attempts = 0 OR (s.retryable = 1 AND s.attempts < s.max_attempts))
  AND NOT EXISTS (
      SELECT 1 FROM workflow_step_edges e
      JOIN workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
      WHERE e.to_step_uuid = s.workflow_step_uuid
        AND p.state NOT IN ('complete', 'resolved_manually'));
