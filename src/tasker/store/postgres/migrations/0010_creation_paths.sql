-- A task is inserted after its first orchestration pass, and its root steps already enqueued
-- (docs/decisions/0011): an inserted row may carry several transitions, listed in last_path as
-- an UPDATE's are (migrations 0007, 0008); the trigger appends one row per element, sort keys
-- 1, 2, ... A row inserted without last_path still gets its one initial transition.

CREATE OR REPLACE FUNCTION tasker_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_path IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.transition_count > OLD.transition_count + 1) THEN
        INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state,
                                      event, sort_key, metadata, processor_uuid, created_at,
                                      updated_at)
        SELECT p.value ->> 'uuid', NEW.task_uuid, p.value ->> 'from', p.value ->> 'to',
               p.value ->> 'event',
               CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.transition_count END + p.ordinality,
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

CREATE OR REPLACE FUNCTION tasker_step_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_path IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.transition_count > OLD.transition_count + 1) THEN
        INSERT INTO workflow_step_transitions (workflow_step_transition_uuid,
                                               workflow_step_uuid, task_uuid, from_state,
                                               to_state, event, sort_key, metadata, created_at,
                                               updated_at)
        SELECT p.value ->> 'uuid', NEW.workflow_step_uuid, NEW.task_uuid, p.value ->> 'from',
               p.value ->> 'to', p.value ->> 'event',
               CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.transition_count END + p.ordinality,
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
