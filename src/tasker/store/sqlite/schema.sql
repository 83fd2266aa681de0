-- tasker schema for SQLite: the current shape, readable top to bottom.
-- Timestamps are UTC ISO-8601 text of fixed width ('2026-01-06T12:00:00.000000Z'), so text
-- comparison is time comparison. JSON columns hold JSON text. Booleans are 0/1.

CREATE TABLE schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);

CREATE TABLE named_tasks (
    named_task_uuid    TEXT PRIMARY KEY,
    namespace          TEXT NOT NULL,
    name               TEXT NOT NULL,
    version            TEXT NOT NULL,
    configuration      TEXT NOT NULL,          -- the template as JSON
    identity_strategy  TEXT NOT NULL DEFAULT 'strict',
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (namespace, name, version)
);

CREATE TABLE tasks (
    task_uuid              TEXT PRIMARY KEY,
    named_task_uuid        TEXT NOT NULL REFERENCES named_tasks (named_task_uuid),
    namespace              TEXT NOT NULL,
    name                   TEXT NOT NULL,
    version                TEXT NOT NULL,
    state                  TEXT NOT NULL,          -- current state, kept with the transition rows
    context                TEXT NOT NULL,
    identity_hash          TEXT NOT NULL UNIQUE,
    initiator              TEXT NOT NULL,
    source_system          TEXT NOT NULL,
    reason                 TEXT NOT NULL,
    tags                   TEXT NOT NULL DEFAULT '[]',
    priority               INTEGER NOT NULL DEFAULT 0,
    correlation_id         TEXT NOT NULL,
    parent_correlation_id  TEXT,
    requested_at           TEXT NOT NULL,
    complete               INTEGER NOT NULL DEFAULT 0,
    completed_at           TEXT,
    transition_count       INTEGER NOT NULL DEFAULT 0,
    state_entered_at       TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    last_event             TEXT,                   -- the last transition's event, metadata (JSON),
    last_metadata          TEXT,                   -- uuid and processor: the trigger below copies
    last_transition_uuid   TEXT,                   -- them into the transition row it appends
    last_processor_uuid    TEXT,
    last_path              TEXT                    -- several transitions in one UPDATE: see below
);
CREATE INDEX tasks_state_idx ON tasks (state, created_at);
CREATE INDEX tasks_named_task_idx ON tasks (named_task_uuid);
CREATE INDEX tasks_created_at_idx ON tasks (created_at);

CREATE TABLE workflow_steps (
    workflow_step_uuid       TEXT PRIMARY KEY,
    task_uuid                TEXT NOT NULL REFERENCES tasks (task_uuid),
    name                     TEXT NOT NULL,
    template_step_name       TEXT NOT NULL,
    namespace                TEXT NOT NULL,      -- routing: workers claim by namespace
    state                    TEXT NOT NULL,
    retryable                INTEGER NOT NULL DEFAULT 1,
    max_attempts             INTEGER NOT NULL DEFAULT 3,
    attempts                 INTEGER NOT NULL DEFAULT 0,
    in_process               INTEGER NOT NULL DEFAULT 0,
    processed                INTEGER NOT NULL DEFAULT 0,
    processed_at             TEXT,
    last_attempted_at        TEXT,
    backoff_request_seconds  REAL,
    next_retry_at            TEXT,
    inputs                   TEXT,
    results                  TEXT,
    checkpoint               TEXT,
    claim_token              TEXT,
    claimed_by               TEXT,
    lease_expires_at         TEXT,
    priority                 INTEGER NOT NULL DEFAULT 0,
    enqueued_at              TEXT,
    transition_count         INTEGER NOT NULL DEFAULT 0,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    last_event               TEXT,               -- as in tasks: what the transition trigger copies
    last_metadata            TEXT,
    last_transition_uuid     TEXT,
    last_path                TEXT,               -- several transitions in one UPDATE
    UNIQUE (task_uuid, name)
);
CREATE INDEX workflow_steps_task_idx ON workflow_steps (task_uuid, state);
-- Partial indexes: the claimable queue in claim order, due retries, running steps' leases.
CREATE INDEX workflow_steps_claim_idx ON workflow_steps (priority DESC, task_uuid, enqueued_at)
    WHERE state = 'enqueued';
CREATE INDEX workflow_steps_retry_idx ON workflow_steps (next_retry_at)
    WHERE state IN ('waiting_for_retry', 'pending') AND next_retry_at IS NOT NULL;
CREATE INDEX workflow_steps_lease_idx ON workflow_steps (lease_expires_at)
    WHERE state = 'in_progress';

CREATE TABLE workflow_step_edges (
    from_step_uuid  TEXT NOT NULL REFERENCES workflow_steps (workflow_step_uuid),
    to_step_uuid    TEXT NOT NULL REFERENCES workflow_steps (workflow_step_uuid),
    name            TEXT NOT NULL,
    task_uuid       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (from_step_uuid, to_step_uuid, name)
);
CREATE INDEX workflow_step_edges_to_idx ON workflow_step_edges (to_step_uuid);

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
    metadata              TEXT NOT NULL DEFAULT '{}',
    processor_uuid        TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    PRIMARY KEY (task_uuid, sort_key)
) WITHOUT ROWID;

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
    metadata                       TEXT NOT NULL DEFAULT '{}',
    created_at                     TEXT NOT NULL,
    updated_at                     TEXT NOT NULL,
    PRIMARY KEY (workflow_step_uuid, sort_key)
) WITHOUT ROWID;

CREATE TABLE workflow_step_result_audit (
    workflow_step_result_audit_uuid  TEXT PRIMARY KEY,
    workflow_step_uuid               TEXT NOT NULL,
    workflow_step_transition_uuid    TEXT NOT NULL,
    task_uuid                        TEXT NOT NULL,
    recorded_at                      TEXT NOT NULL,
    worker_uuid                      TEXT,
    correlation_id                   TEXT,
    success                          INTEGER NOT NULL,
    execution_time_ms                REAL,
    attempt                          INTEGER NOT NULL,
    UNIQUE (workflow_step_uuid, workflow_step_transition_uuid)
);

CREATE TABLE dlq_entries (
    dlq_entry_uuid        TEXT PRIMARY KEY,
    task_uuid             TEXT NOT NULL REFERENCES tasks (task_uuid),
    original_state        TEXT NOT NULL,
    dlq_reason            TEXT NOT NULL,
    dlq_timestamp         TEXT NOT NULL,
    resolution_status     TEXT NOT NULL DEFAULT 'pending',
    resolution_timestamp  TEXT,
    resolution_notes      TEXT,
    resolved_by           TEXT,
    task_snapshot         TEXT NOT NULL,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE UNIQUE INDEX dlq_entries_pending_idx ON dlq_entries (task_uuid) WHERE resolution_status = 'pending';

-- Transition rows are appended by these triggers (states.md §3.1): a state change is one UPDATE
-- of the task or step row; inserting a row writes its initial null -> pending transition. The
-- most recent row is the one whose sort_key equals the entity's transition_count. A task or step
-- UPDATE that adds k > 1 to transition_count lists its k transitions in last_path (JSON array),
-- and so does a row inserted with several transitions (a new task after its first pass, a root
-- step inserted enqueued).

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

-- The readiness rule of execution.md §5 (migration 0010): eligible = ready once the retry time has come.
CREATE VIEW workflow_steps_eligible AS
SELECT s.rowid AS seq, s.workflow_step_uuid, s.task_uuid, s.state, s.created_at, s.next_retry_at
FROM workflow_steps s
WHERE s.state IN ('pending', 'waiting_for_retry')
  AND s.processed = 0 AND s.in_process = 0
  AND (s.attempts = 0 OR (s.retryable = 1 AND s.attempts < s.max_attempts))
  AND NOT EXISTS (
      SELECT 1 FROM workflow_step_edges e
      JOIN workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
      WHERE e.to_step_uuid = s.workflow_step_uuid
        AND p.state NOT IN ('complete', 'resolved_manually'));
