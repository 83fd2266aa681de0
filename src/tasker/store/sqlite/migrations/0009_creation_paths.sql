-- A task is inserted after its first orchestration pass, and its root steps already enqueued
-- (docs/decisions/0011): an inserted row may carry several transitions, listed in last_path as
-- an UPDATE's are (migrations 0007, 0008); the insert triggers append one row per element, sort
-- keys 1, 2, ... A row inserted without last_path still gets its one initial transition.

DROP TRIGGER tasks_initial_transition;

CREATE TRIGGER tasks_initial_transition AFTER INSERT ON tasks
WHEN NEW.last_path IS NULL
BEGIN
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, metadata, processor_uuid, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid, NULL, NEW.state, NEW.last_event,
            NEW.transition_count, NEW.last_metadata, NEW.last_processor_uuid, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER tasks_initial_transition_path AFTER INSERT ON tasks
WHEN NEW.last_path IS NOT NULL
BEGIN
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, metadata, processor_uuid, created_at, updated_at)
    SELECT json_extract(p.value, '$.uuid'), NEW.task_uuid, json_extract(p.value, '$.from'),
           json_extract(p.value, '$.to'), json_extract(p.value, '$.event'), 1 + p.key,
           json_extract(p.value, '$.metadata'), NEW.last_processor_uuid, NEW.updated_at,
           NEW.updated_at
    FROM json_each(NEW.last_path) p;
END;

DROP TRIGGER workflow_steps_initial_transition;

CREATE TRIGGER workflow_steps_initial_transition AFTER INSERT ON workflow_steps
WHEN NEW.last_path IS NULL
BEGIN
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           metadata, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.workflow_step_uuid, NEW.task_uuid, NULL, NEW.state,
            NEW.last_event, NEW.transition_count, NEW.last_metadata, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER workflow_steps_initial_transition_path AFTER INSERT ON workflow_steps
WHEN NEW.last_path IS NOT NULL
BEGIN
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           metadata, created_at, updated_at)
    SELECT json_extract(p.value, '$.uuid'), NEW.workflow_step_uuid, NEW.task_uuid,
           json_extract(p.value, '$.from'), json_extract(p.value, '$.to'),
           json_extract(p.value, '$.event'), 1 + p.key, json_extract(p.value, '$.metadata'),
           NEW.updated_at, NEW.updated_at
    FROM json_each(NEW.last_path) p;
END;
