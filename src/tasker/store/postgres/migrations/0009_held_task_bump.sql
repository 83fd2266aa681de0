-- A task state change under the task's own row lock cannot lose a race, so the store sends it
-- without waiting for its result (queries.sql: bump_held_task); should it find the task in
-- another state after all (a bug), the statement calls this function, which fails it and with
-- it the transaction.

CREATE FUNCTION tasker_fail(message text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'raise_exception';
END
$$;
