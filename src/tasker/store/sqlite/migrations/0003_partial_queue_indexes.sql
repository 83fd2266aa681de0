-- The queue, the due retries and the leases are small subsets of workflow_steps: partial
-- indexes hold only those rows, so a state change of any other step touches none of them, and
-- the claim index delivers (priority DESC, enqueued_at) order without sorting the whole queue.

DROP INDEX workflow_steps_claim_idx;
DROP INDEX workflow_steps_retry_idx;
DROP INDEX workflow_steps_lease_idx;
CREATE INDEX workflow_steps_claim_idx ON workflow_steps (priority DESC, enqueued_at)
    WHERE state = 'enqueued';
CREATE INDEX workflow_steps_retry_idx ON workflow_steps (next_retry_at)
    WHERE state IN ('waiting_for_retry', 'pending') AND next_retry_at IS NOT NULL;
CREATE INDEX workflow_steps_lease_idx ON workflow_steps (lease_expires_at)
    WHERE state = 'in_progress';
