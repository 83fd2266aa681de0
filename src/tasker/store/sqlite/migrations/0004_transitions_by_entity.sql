-- Transition rows are stored in (entity, sort_key) order (WITHOUT ROWID, keyed by what every
-- reader and the triggers look them up by): one b-tree instead of a rowid table, a uuid index
-- and a (entity, sort_key) index to write per transition. The result audit's step index is
-- dropped: its unique (step, transition) index already serves lookups by step.
-- The tables are rebuilt; the triggers that write them are dropped first and made again.

DROP TRIGGER tasks_initial_transition;
DROP TRIGGER tasks_transition;
DROP TRIGGER workflow_steps_initial_transition;
DROP TRIGGER workflow_steps_transition;
DROP INDEX workflow_step_result_audit_step_idx;

ALTER TABLE task_transitions RENAME TO task_transitions_old;
CREATE TABLE task_transitions (
    task_transition_uuid  TEXT NOT NULL,
    task_uuid             TEXT NOT NULL REFERENCES tasks (task_uuid),
    from_state            TEXT,
    to_state              TEXT NOT NULL CHECK (to_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures', 'complete',
        'error', 'cancelled', 'resolved_manually')),
    event                 TEXT,
    sort_key              INTEGER NOT NULL,
    most_recent           INTEGER NOT NULL,
    metadata              TEXT NOT NULL DEFAULT '{}',
    processor_uuid        TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    PRIMARY KEY (task_uuid, sort_key)
) WITHOUT ROWID;
INSERT INTO task_transitions SELECT task_transition_uuid, task_uuid, from_state, to_state, event,
    sort_key, most_recent, metadata, processor_uuid, created_at, updated_at FROM task_transitions_old;
DROP TABLE task_transitions_old;
CREATE UNIQUE INDEX task_transitions_most_recent_idx ON task_transitions (task_uuid) WHERE most_recent = 1;

ALTER TABLE workflow_step_transitions RENAME TO workflow_step_transitions_old;
CREATE TABLE workflow_step_transitions (
    workflow_step_transition_uuid  TEXT NOT NULL,
    workflow_step_uuid             TEXT NOT NULL REFERENCES workflow_steps (workflow_step_uuid),
    task_uuid                      TEXT NOT NULL,
    from_state                     TEXT,
    to_state                       TEXT NOT NULL CHECK (to_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'complete', 'error',
        'cancelled', 'resolved_manually')),
    event                          TEXT,
    sort_key                       INTEGER NOT NULL,
    most_recent                    INTEGER NOT NULL,
    metadata                       TEXT NOT NULL DEFAULT '{}',
    created_at                     TEXT NOT NULL,
    updated_at                     TEXT NOT NULL,
    PRIMARY KEY (workflow_step_uuid, sort_key)
) WITHOUT ROWID;
INSERT INTO workflow_step_transitions SELECT workflow_step_transition_uuid, workflow_step_uuid,
    task_uuid, from_state, to_state, event, sort_key, most_recent, metadata, created_at, updated_at
FROM workflow_step_transitions_old;
DROP TABLE workflow_step_transitions_old;
CREATE UNIQUE INDEX workflow_step_transitions_most_recent_idx ON workflow_step_transitions (workflow_step_uuid) WHERE most_recent = 1;

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
