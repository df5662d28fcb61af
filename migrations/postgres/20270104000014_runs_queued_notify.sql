-- Several instances share one database: a run queued (or queued again) by one is announced to the
-- others on the channel cosell_runs_queued, so their idle workers start at once rather than at their
-- next poll (src/store/runs/notify.rs). PostgreSQL folds the same notification sent twice in one
-- transaction into one.
CREATE FUNCTION cosell_runs_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cosell_runs_queued', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER runs_queued AFTER INSERT OR UPDATE OF status ON runs
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION cosell_runs_queued();
