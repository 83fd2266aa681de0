-- One UPDATE may record several task transitions at once: an orchestration pass that takes a
-- task through steps_in_process -> evaluating_results -> enqueuing_steps -> steps_in_process
-- sets state to the last of them, adds their number to transition_count and lists them in
-- last_path (a JSON array of {uuid, from, to, event, metadata}); the trigger appends one row
-- per element, sort keys in order (docs/decisions/0009-task-transition-paths.md). A single transition leaves
-- last_path NULL and is appended as before.

ALTER TABLE tasks ADD COLUMN last_path jsonb;

CREATE OR REPLACE FUNCTION tasker_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.last_path IS NOT NULL
       AND NEW.transition_count > OLD.transition_count + 1 THEN
        INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state,
                                      event, sort_key, metadata, processor_uuid, created_at,
                                      updated_at)
        SELECT p.value ->> 'uuid', NEW.task_uuid, p.value ->> 'from', p.value ->> 'to',
               p.value ->> 'event', OLD.transition_count + p.ordinality,
               COALESCE(p.value -> 'metadata', '{}'), NEW.last_processor_uuid,
               NEW.updated_at, NEW.updated_at
        FROM jsonb_array_elements(NEW.last_path) WITH ORDINALITY AS p (value, ordinality);
        RETURN NULL;
    END IF;
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, metadata, processor_uuid, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state, NEW.last_event,
            NEW.transition_count, COALESCE(NEW.last_metadata, '{}'),
            NEW.last_processor_uuid, NEW.updated_at, NEW.updated_at);
    RETURN NULL;
END
$$;
