-- Transition rows are written only by the transition triggers of their own task or step row
-- (0002), so their parent exists by construction and no code deletes tasks or steps: the foreign
-- keys only cost a key-share lookup of the parent per transition row, about five per step
-- (docs/decisions/0019).
ALTER TABLE task_transitions DROP CONSTRAINT task_transitions_task_uuid_fkey;
ALTER TABLE workflow_step_transitions
    DROP CONSTRAINT workflow_step_transitions_workflow_step_uuid_fkey;
