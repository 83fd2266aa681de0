-- As migration 0007 for tasks: one UPDATE of a step may record several transitions (a plain
-- step's result: in_progress -> enqueued_for_orchestration -> complete), listed in last_path;
-- the trigger appends one row per element, sort keys in order (docs/decisions/0009).

ALTER TABLE workflow_steps ADD COLUMN last_path TEXT;

DROP TRIGGER workflow_steps_transition;

CREATE TRIGGER workflow_steps_transition AFTER UPDATE OF transition_count ON workflow_steps
WHEN NEW.transition_count = OLD.transition_count + 1
BEGIN
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           metadata, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.workflow_step_uuid, NEW.task_uuid, OLD.state,
            NEW.state, NEW.last_event, NEW.transition_count, NEW.last_metadata,
            NEW.updated_at, NEW.updated_at);
END;

CREATE TRIGGER workflow_steps_transition_path AFTER UPDATE OF transition_count ON workflow_steps
WHEN NEW.transition_count > OLD.transition_count + 1
BEGIN
    INSERT INTO workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid,
                                           task_uuid, from_state, to_state, event, sort_key,
                                           metadata, created_at, updated_at)
    SELECT json_extract(p.value, '$.uuid'), NEW.workflow_step_uuid, NEW.task_uuid,
           json_extract(p.value, '$.from'), json_extract(p.value, '$.to'),
           json_extract(p.value, '$.event'), OLD.transition_count + 1 + p.key,
           json_extract(p.value, '$.metadata'), NEW.updated_at, NEW.updated_at
    FROM json_each(NEW.last_path) p;
END;
