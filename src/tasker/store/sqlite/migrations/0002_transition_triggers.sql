-- Transition rows are appended by triggers: a state change is one UPDATE of the task or step
-- row (state, transition_count + 1 and the last_* columns below); the trigger retires the
-- previous most recent transition row and inserts the new one. Inserting a task or step
-- writes its initial null -> pending row the same way.

ALTER TABLE tasks ADD COLUMN last_event TEXT;
ALTER TABLE tasks ADD COLUMN last_metadata TEXT;
ALTER TABLE tasks ADD COLUMN last_transition_uuid TEXT;
ALTER TABLE tasks ADD COLUMN last_processor_uuid TEXT;
ALTER TABLE workflow_steps ADD COLUMN last_event TEXT;
ALTER TABLE workflow_steps ADD COLUMN last_metadata TEXT;
ALTER TABLE workflow_steps ADD COLUMN last_transition_uuid TEXT;

CREATE TRIGGER tasks_initial_transition AFTER INSERT ON tasks
BEGIN
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, most_recent, metadata, processor_uuid, created_at,
                                  updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid, NULL, NEW.state, NEW.last_event,
            NEW.transition_count, 1, NEW.last_metadata, NEW.last_processor_uuid, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER tasks_transition AFTER UPDATE OF transition_count ON tasks
WHEN NEW.transition_count <> OLD.transition_count
BEGIN
    UPDATE task_transitions SET most_recent = 0, updated_at = NEW.updated_at
    WHERE task_uuid = NEW.task_uuid AND most_recent = 1;
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, most_recent, metadata, processor_uuid, created_at,
                                  updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid, OLD.state, NEW.state, NEW.last_event,
            NEW.transition_count, 1, NEW.last_metadata, NEW.last_processor_uuid, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER workflow_steps_initial_transition AFTER INSERT ON workflow_steps
BEGIN
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           most_recent, metadata, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.workflow_step_uuid, NEW.task_uuid, NULL, NEW.state,
            NEW.last_event, NEW.transition_count, 1, NEW.last_metadata, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER workflow_steps_transition AFTER UPDATE OF transition_count ON workflow_steps
WHEN NEW.transition_count <> OLD.transition_count
BEGIN
    UPDATE workflow_step_transitions SET most_recent = 0, updated_at = NEW.updated_at
    WHERE workflow_step_uuid = NEW.workflow_step_uuid AND most_recent = 1;
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           most_recent, metadata, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.workflow_step_uuid, NEW.task_uuid, OLD.state,
            NEW.state, NEW.last_event, NEW.transition_count, 1, NEW.last_metadata,
            NEW.updated_at, NEW.updated_at);
END;
