-- One UPDATE may record several task transitions at once: an orchestration pass that takes a
-- task through steps_in_process -> evaluating_results -> enqueuing_steps -> steps_in_process
-- sets state to the last of them, adds their number to transition_count and lists them in
-- last_path (a JSON array of {uuid, from, to, event, metadata}); this trigger appends one row
-- per element, sort keys in order (docs/decisions/0009-task-transition-paths.md). A single transition leaves
-- last_path NULL and is appended by tasks_transition as before.

ALTER TABLE tasks ADD COLUMN last_path TEXT;

DROP TRIGGER tasks_transition;

CREATE TRIGGER tasks_transition AFTER UPDATE OF transition_count ON tasks
WHEN NEW.transition_count = OLD.transition_count + 1
BEGIN
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, metadata, processor_uuid, created_at, updated_at)
    VALUES (NEW.last_transition_uuid, NEW.task_uuid, OLD.state, NEW.state, NEW.last_event,
            NEW.transition_count, NEW.last_metadata, NEW.last_processor_uuid, NEW.updated_at,
            NEW.updated_at);
END;

CREATE TRIGGER tasks_transition_path AFTER UPDATE OF transition_count ON tasks
WHEN NEW.transition_count > OLD.transition_count + 1
BEGIN
    INSERT INTO task_transitions (task_transition_uuid, task_uuid, from_state, to_state, event,
                                  sort_key, metadata, processor_uuid, created_at, updated_at)
    SELECT json_extract(p.value, '$.uuid'), NEW.task_uuid, json_extract(p.value, '$.from'),
           json_extract(p.value, '$.to'), json_extract(p.value, '$.event'),
           OLD.transition_count + 1 + p.key, json_extract(p.value, '$.metadata'),
           NEW.last_processor_uuid, NEW.updated_at, NEW.updated_at
    FROM json_each(NEW.last_path) p;
END;
