-- How far a long run has come (a reconciliation: records compared of total, differences found, runs
-- queued), written while it works so the page can show a progress bar.
CREATE TABLE run_progress (
    run_id      BIGINT PRIMARY KEY REFERENCES runs (id),
    compared    BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    differences BIGINT NOT NULL,
    queued      BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
