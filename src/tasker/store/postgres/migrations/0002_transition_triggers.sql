-- Transition rows are appended by triggers: a state change is one UPDATE of the task or step
-- row (state, transition_count + 1 and the last_* columns below); the trigger retires the
-- previous most recent transition row and inserts the new one. Inserting a task or step
-- writes its initial null -> pending row the same way.

ALTER TABLE tasks ADD COLUMN last_event text;
ALTER TABLE tasks ADD COLUMN last_metadata jsonb;
ALTER TABLE tasks ADD COLUMN last_transition_uuid text;
ALTER TABLE tasks ADD COLUMN last_processor_uuid text;
ALTER TABLE workflow_steps ADD COLUMN last_event text;
ALTER TABLE workflow_steps ADD COLUMN last_metadata jsonb;
ALTER TABLE workflow_steps ADD COLUMN last_transition_uuid text;

CREATE FUNCTION tasker_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE task_transitions SET most_recent = false, updated_at = NEW.updated_at
        WHERE task_uuid = NEW.task_uuid AND most_recent;
    END IF;
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, most_recent, metadata, processor_uuid, created_at,
                                  updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state, NEW.last_event,
            NEW.transition_count, true, COALESCE(NEW.last_metadata, '{}'),
            NEW.last_processor_uuid, NEW.updated_at, NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_initial_transition AFTER INSERT ON tasks
FOR EACH ROW EXECUTE FUNCTION tasker_task_transition();

CREATE TRIGGER tasks_transition AFTER UPDATE OF transition_count ON tasks
FOR EACH ROW WHEN (NEW.transition_count <> OLD.transition_count)
EXECUTE FUNCTION tasker_task_transition();

CREATE FUNCTION tasker_step_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE workflow_step_transitions SET most_recent = false, updated_at = NEW.updated_at
        WHERE workflow_step_uuid = NEW.workflow_step_uuid AND most_recent;
    END IF;
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           most_recent, metadata, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.workflow_step_uuid, NEW.task_uuid,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state, NEW.last_event,
            NEW.transition_count, true, COALESCE(NEW.last_metadata, '{}'),
            NEW.updated_at, NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER workflow_steps_initial_transition AFTER INSERT ON workflow_steps
FOR EACH ROW EXECUTE FUNCTION tasker_step_transition();

CREATE TRIGGER workflow_steps_transition AFTER UPDATE OF transition_count ON workflow_steps
FOR EACH ROW WHEN (NEW.transition_count <> OLD.transition_count)
EXECUTE FUNCTION tasker_step_transition();
