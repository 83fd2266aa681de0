-- Claims take the oldest task's steps first (priority, then task_uuid, a UUIDv7 and so the task's
-- creation order, then enqueued_at): a backlog is worked task by task instead of breadth-first
-- across every task in flight, so fewer tasks are in flight and each finishes sooner
-- (docs/decisions/0016).
DROP INDEX workflow_steps_claim_idx;
CREATE INDEX workflow_steps_claim_idx ON workflow_steps (priority DESC, task_uuid, enqueued_at)
    WHERE state = 'enqueued';
