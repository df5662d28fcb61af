-- The Overview's charts (syncs per hour, failed runs per day by cause) read counts, not runs: drawing
-- them at a million runs reads a few hundred rows. A top-level run is counted once, in the UTC hour it
-- ended ('YYYY-MM-DD HH'), by the database itself as its status turns final, so no way of ending a run
-- can forget it. Child runs are part of their parent's sync and are not counted.
ALTER TABLE runs ADD COLUMN failure_cause TEXT;

CREATE TABLE run_counts (
    hour   TEXT NOT NULL,
    flow   TEXT NOT NULL,
    status TEXT NOT NULL,
    -- Why, for failed runs ('' otherwise, and for runs failed before causes were kept).
    cause  TEXT NOT NULL,
    runs   BIGINT NOT NULL,
    PRIMARY KEY (hour, flow, status, cause)
);

CREATE FUNCTION cosell_count_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_counts (hour, flow, status, cause, runs)
    VALUES (to_char(COALESCE(NEW.finished_at, NEW.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24'),
            NEW.flow, NEW.status, COALESCE(NEW.failure_cause, ''), 1)
    ON CONFLICT (hour, flow, status, cause) DO UPDATE SET runs = run_counts.runs + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER run_counts_on_insert AFTER INSERT ON runs
    FOR EACH ROW WHEN (NEW.parent_run_id IS NULL AND NEW.status IN ('succeeded', 'failed', 'skipped'))
    EXECUTE FUNCTION cosell_count_run();

CREATE TRIGGER run_counts_on_end AFTER UPDATE OF status ON runs
    FOR EACH ROW WHEN (NEW.parent_run_id IS NULL AND NEW.status IN ('succeeded', 'failed', 'skipped')
        AND OLD.status NOT IN ('succeeded', 'failed', 'skipped'))
    EXECUTE FUNCTION cosell_count_run();

-- The runs already kept, counted once.
INSERT INTO run_counts (hour, flow, status, cause, runs)
SELECT to_char(COALESCE(finished_at, created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24'), flow, status, '',
       COUNT(*)
  FROM runs
 WHERE parent_run_id IS NULL AND status IN ('succeeded', 'failed', 'skipped')
 GROUP BY 1, 2, 3;
