-- Which transition row is the most recent is derived, not stored: it is the row whose sort_key
-- equals its task's or step's transition_count (the entity row carries its current state). A
-- state change used to rewrite the previous row (most_recent = 0) and a unique partial index
-- besides appending the new row; now it only appends (docs/decisions/0008-derived-most-recent.md).

DROP TRIGGER tasks_initial_transition;
DROP TRIGGER tasks_transition;
DROP TRIGGER workflow_steps_initial_transition;
DROP TRIGGER workflow_steps_transition;
DROP INDEX task_transitions_most_recent_idx;
DROP INDEX workflow_step_transitions_most_recent_idx;
ALTER TABLE task_transitions DROP COLUMN most_recent;
ALTER TABLE workflow_step_transitions DROP COLUMN most_recent;

CREATE TRIGGER tasks_initial_transition AFTER INSERT ON tasks
BEGIN
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, metadata, processor_uuid, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid, NULL, NEW.state, NEW.last_event,
            NEW.transition_count, NEW.last_metadata, NEW.last_processor_uuid, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER tasks_transition AFTER UPDATE OF transition_count ON tasks
WHEN NEW.transition_count <> OLD.transition_count
BEGIN
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, metadata, processor_uuid, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid, OLD.state, NEW.state, NEW.last_event,
            NEW.transition_count, NEW.last_metadata, NEW.last_processor_uuid, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER workflow_steps_initial_transition AFTER INSERT ON workflow_steps
BEGIN
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           metadata, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.workflow_step_uuid, NEW.task_uuid, NULL, NEW.state,
            NEW.last_event, NEW.transition_count, NEW.last_metadata, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER workflow_steps_transition AFTER UPDATE OF transition_count ON workflow_steps
WHEN NEW.transition_count <> OLD.transition_count
BEGIN
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           metadata, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.workflow_step_uuid, NEW.task_uuid, OLD.state,
            NEW.state, NEW.last_event, NEW.transition_count, NEW.last_metadata,
            NEW.updated_at, NEW.updated_at);
END;
