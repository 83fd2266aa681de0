-- tasker schema for PostgreSQL: the current shape, readable top to bottom.
-- The same tables, columns and indexes as the SQLite schema, with PostgreSQL's own types: ids are
-- text (the code passes them as str, and a malformed id is "not found", never a type error),
-- timestamps timestamptz, JSON jsonb, flags boolean. The one addition is workflow_steps.step_seq,
-- the insertion order SQLite gets for free from its rowid.

CREATE TABLE schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL
);

CREATE TABLE named_tasks (
    named_task_uuid    text PRIMARY KEY,
    namespace          text NOT NULL,
    name               text NOT NULL,
    version            text NOT NULL,
    configuration      jsonb NOT NULL,         -- the template as JSON
    identity_strategy  text NOT NULL DEFAULT 'strict',
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    UNIQUE (namespace, name, version)
);

CREATE TABLE tasks (
    task_uuid              text PRIMARY KEY,
    named_task_uuid        text NOT NULL REFERENCES named_tasks (named_task_uuid),
    namespace              text NOT NULL,
    name                   text NOT NULL,
    version                text NOT NULL,
    state                  text NOT NULL CHECK (state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures', 'complete',
        'error', 'cancelled', 'resolved_manually')),
    context                jsonb NOT NULL,
    identity_hash          text NOT NULL UNIQUE,
    initiator              text NOT NULL,
    source_system          text NOT NULL,
    reason                 text NOT NULL,
    tags                   jsonb NOT NULL DEFAULT '[]',
    priority               integer NOT NULL DEFAULT 0,
    correlation_id         text NOT NULL,
    parent_correlation_id  text,
    requested_at           timestamptz NOT NULL,
    complete               boolean NOT NULL DEFAULT false,
    completed_at           timestamptz,
    transition_count       integer NOT NULL DEFAULT 0,
    state_entered_at       timestamptz NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    last_event             text,                   -- the last transition's event, metadata,
    last_metadata          jsonb,                  -- uuid and processor: the trigger below copies
    last_transition_uuid   text,                   -- them into the transition row it appends
    last_processor_uuid    text,
    last_path              jsonb                   -- several transitions in one UPDATE: see below
);
CREATE INDEX tasks_state_idx ON tasks (state, created_at);
CREATE INDEX tasks_named_task_idx ON tasks (named_task_uuid);
CREATE INDEX tasks_created_at_idx ON tasks (created_at);

CREATE TABLE workflow_steps (
    workflow_step_uuid       text PRIMARY KEY,
    task_uuid                text NOT NULL REFERENCES tasks (task_uuid),
    name                     text NOT NULL,
    template_step_name       text NOT NULL,
    namespace                text NOT NULL,      -- routing: workers claim by namespace
    state                    text NOT NULL CHECK (state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'complete', 'error',
        'cancelled', 'resolved_manually')),
    retryable                boolean NOT NULL DEFAULT true,
    max_attempts             integer NOT NULL DEFAULT 3,
    attempts                 integer NOT NULL DEFAULT 0,
    in_process               boolean NOT NULL DEFAULT false,
    processed                boolean NOT NULL DEFAULT false,
    processed_at             timestamptz,
    last_attempted_at        timestamptz,
    backoff_request_seconds  double precision,
    next_retry_at            timestamptz,
    inputs                   jsonb,
    results                  jsonb,
    checkpoint               jsonb,
    claim_token              text,
    claimed_by               text,
    lease_expires_at         timestamptz,
    priority                 integer NOT NULL DEFAULT 0,
    enqueued_at              timestamptz,
    transition_count         integer NOT NULL DEFAULT 0,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    step_seq                 bigint GENERATED ALWAYS AS IDENTITY,  -- insertion order (SQLite: rowid)
    last_event               text,               -- as in tasks: what the transition trigger copies
    last_metadata            jsonb,
    last_transition_uuid     text,
    last_path                jsonb,              -- several transitions in one UPDATE
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
    from_step_uuid  text NOT NULL REFERENCES workflow_steps (workflow_step_uuid),
    to_step_uuid    text NOT NULL REFERENCES workflow_steps (workflow_step_uuid),
    name            text NOT NULL,
    task_uuid       text NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (from_step_uuid, to_step_uuid, name)
);
CREATE INDEX workflow_step_edges_to_idx ON workflow_step_edges (to_step_uuid);

CREATE TABLE task_transitions (
    task_transition_uuid  text NOT NULL,
    task_uuid             text NOT NULL,  -- no foreign key: written by the trigger of its task row
    from_state            text,
    to_state              text NOT NULL CHECK (to_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures', 'complete',
        'error', 'cancelled', 'resolved_manually')),
    event                 text,
    sort_key              integer NOT NULL,
    metadata              jsonb NOT NULL DEFAULT '{}',
    processor_uuid        text,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (task_uuid, sort_key)
);

CREATE TABLE workflow_step_transitions (
    workflow_step_transition_uuid  text NOT NULL,
    workflow_step_uuid             text NOT NULL,  -- no foreign key: written by its step's trigger
    task_uuid                      text NOT NULL,
    from_state                     text,
    to_state                       text NOT NULL CHECK (to_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'complete', 'error',
        'cancelled', 'resolved_manually')),
    event                          text,
    sort_key                       integer NOT NULL,
    metadata                       jsonb NOT NULL DEFAULT '{}',
    created_at                     timestamptz NOT NULL,
    updated_at                     timestamptz NOT NULL,
    PRIMARY KEY (workflow_step_uuid, sort_key)
);

CREATE TABLE workflow_step_result_audit (
    workflow_step_result_audit_uuid  text PRIMARY KEY,
    workflow_step_uuid               text NOT NULL,
    workflow_step_transition_uuid    text NOT NULL,
    task_uuid                        text NOT NULL,
    recorded_at                      timestamptz NOT NULL,
    worker_uuid                      text,
    correlation_id                   text,
    success                          boolean NOT NULL,
    execution_time_ms                double precision,
    attempt                          integer NOT NULL,
    UNIQUE (workflow_step_uuid, workflow_step_transition_uuid)
);

CREATE TABLE dlq_entries (
    dlq_entry_uuid        text PRIMARY KEY,
    task_uuid             text NOT NULL REFERENCES tasks (task_uuid),
    original_state        text NOT NULL,
    dlq_reason            text NOT NULL,
    dlq_timestamp         timestamptz NOT NULL,
    resolution_status     text NOT NULL DEFAULT 'pending',
    resolution_timestamp  timestamptz,
    resolution_notes      text,
    resolved_by           text,
    task_snapshot         jsonb NOT NULL,
    metadata              jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE UNIQUE INDEX dlq_entries_pending_idx ON dlq_entries (task_uuid) WHERE resolution_status = 'pending';

-- Transition rows are appended by these triggers (states.md §3.1): a state change is one UPDATE
-- of the task or step row; inserting a row writes its initial null -> pending transition. The
-- most recent row is the one whose sort_key equals the entity's transition_count. A task or step
-- UPDATE that adds k > 1 to transition_count lists its k transitions in last_path (JSON array),
-- and so does a row inserted with several transitions (a new task after its first pass, a root
-- step inserted enqueued).

CREATE FUNCTION tasker_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER tasks_initial_transition AFTER INSERT ON tasks
FOR EACH ROW EXECUTE FUNCTION tasker_task_transition();

CREATE TRIGGER tasks_transition AFTER UPDATE OF transition_count ON tasks
FOR EACH ROW WHEN (NEW.transition_count <> OLD.transition_count)
EXECUTE FUNCTION tasker_task_transition();

CREATE FUNCTION tasker_step_transition() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER workflow_steps_initial_transition AFTER INSERT ON workflow_steps
FOR EACH ROW EXECUTE FUNCTION tasker_step_transition();

CREATE TRIGGER workflow_steps_transition AFTER UPDATE OF transition_count ON workflow_steps
FOR EACH ROW WHEN (NEW.transition_count <> OLD.transition_count)
EXECUTE FUNCTION tasker_step_transition();

-- Fails the statement that calls it: a task state change sent without waiting for its result
-- (queries.sql: bump_held_task) that found the task in another state fails its transaction.
CREATE FUNCTION tasker_fail(message text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'raise_exception';
END
$$;

-- Fails a predicted orchestration pass whose premise did not hold (queries_batch.sql:
-- check_predicted_passes, migration 0014): its own SQLSTATE, so the worker redoes the
-- transaction the ordinary way.
CREATE FUNCTION tasker_mispredicted(message text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'TK001';
END
$$;

-- The readiness rule of execution.md §5 (migration 0011): eligible = ready once the retry time has come.
CREATE VIEW workflow_steps_eligible AS
SELECT s.step_seq AS seq, s.workflow_step_uuid, s.task_uuid, s.state, s.created_at,
       s.next_retry_at
FROM workflow_steps s
WHERE s.state IN ('pending', 'waiting_for_retry')
  AND NOT s.processed AND NOT s.in_process
  AND (s.attempts = 0 OR (s.retryable AND s.attempts < s.max_attempts))
  AND NOT EXISTS (
      SELECT 1 FROM workflow_step_edges e
      JOIN workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
      WHERE e.to_step_uuid = s.workflow_step_uuid
        AND p.state NOT IN ('complete', 'resolved_manually'));
