-- Transition rows are keyed by (entity, sort_key), what every reader and the triggers look them
-- up by: one unique index fewer to write per transition. The result audit's step index is
-- dropped: its unique (step, transition) index already serves lookups by step.

ALTER TABLE task_transitions DROP CONSTRAINT task_transitions_pkey;
ALTER TABLE task_transitions ADD PRIMARY KEY (task_uuid, sort_key);
DROP INDEX task_transitions_sort_idx;
ALTER TABLE workflow_step_transitions DROP CONSTRAINT workflow_step_transitions_pkey;
ALTER TABLE workflow_step_transitions ADD PRIMARY KEY (workflow_step_uuid, sort_key);
DROP INDEX workflow_step_transitions_sort_idx;
DROP INDEX workflow_step_result_audit_step_idx;
