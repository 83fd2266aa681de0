-- 0014: fails a predicted orchestration pass whose premise did not hold (queries_batch.sql:
-- check_predicted_passes, docs/decisions/0023): its own SQLSTATE, so the worker redoes the
-- transaction the ordinary way instead of reporting a bug (tasker_fail).
CREATE FUNCTION tasker_mispredicted(message text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'TK001';
END
$$;
