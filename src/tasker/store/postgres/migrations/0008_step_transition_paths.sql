-- As migration 0007 for tasks: one UPDATE of a step may record several transitions (a plain
-- step's result: in_progress -> enqueued_for_orchestration -> complete), listed in last_path;
-- the trigger appends one row per element, sort keys in order (docs/decisions/0009).

ALTER TABLE workflow_steps ADD COLUMN last_path jsonb;

CREATE OR REPLACE FUNCTION tasker_step_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.last_path IS NOT NULL
       AND NEW.transition_count > OLD.transition_count + 1 THEN
        INSERT INTO workflow_step_transitions (workflow_step_transition_uuid,
                                               workflow_step_uuid, task_uuid, from_state,
                                               to_state, event, sort_key, metadata, created_at,
                                               updated_at)
        SELECT p.value ->> 'uuid', NEW.workflow_step_uuid, NEW.task_uuid, p.value ->> 'from',
               p.value ->> 'to', p.value ->> 'event', OLD.transition_count + p.ordinality,
               COALESCE(p.value -> 'metadata', '{}'), NEW.updated_at, NEW.updated_at
        FROM jsonb_array_elements(NEW.last_path) WITH ORDINALITY AS p (value, ordinality);
        RETURN NULL;
    END IF;
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
