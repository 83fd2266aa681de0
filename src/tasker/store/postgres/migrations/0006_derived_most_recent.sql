-- Which transition row is the most recent is derived, not stored: it is the row whose sort_key
-- equals its task's or step's transition_count (the entity row carries its current state). A
-- state change used to rewrite the previous row (most_recent = false: a dead tuple and a
-- partial-index update per transition) besides appending the new row; now it only appends
-- (docs/decisions/0008-derived-most-recent.md).

CREATE OR REPLACE FUNCTION tasker_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, metadata, processor_uuid, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state, NEW.last_event,
            NEW.transition_count, COALESCE(NEW.last_metadata, '{}'),
            NEW.last_processor_uuid, NEW.updated_at, NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tasker_step_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           metadata, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.workflow_step_uuid, NEW.task_uuid,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state, NEW.last_event,
            NEW.transition_count, COALESCE(NEW.last_metadata, '{}'),
            NEW.updated_at, NEW.updated_at);
    RETURN NULL;
END
$$;

DROP INDEX task_transitions_most_recent_idx;
DROP INDEX workflow_step_transitions_most_recent_idx;
ALTER TABLE task_transitions DROP COLUMN most_recent;
ALTER TABLE workflow_step_transitions DROP COLUMN most_recent;
