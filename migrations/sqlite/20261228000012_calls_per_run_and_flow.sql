-- API calls per run and per flow, for the Runs page: each step says which system its calls went to,
-- a run keeps its totals (settled when it ends or goes back to the queue, so a list reads them from
-- the run's own row), and the day's counter is kept per flow as well as per system.
ALTER TABLE run_steps ADD COLUMN system TEXT;
ALTER TABLE runs ADD COLUMN partner_center_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN crm_calls INTEGER NOT NULL DEFAULT 0;

-- The flow is '' for calls made outside runs (the change feed, connection checks, the dashboard).
CREATE TABLE api_calls_by_flow (
    system TEXT NOT NULL,
    day    TEXT NOT NULL,
    flow   TEXT NOT NULL,
    calls  BIGINT NOT NULL,
    PRIMARY KEY (system, day, flow)
);
INSERT INTO api_calls_by_flow (system, day, flow, calls) SELECT system, day, '', calls FROM api_calls;
DROP TABLE api_calls;
ALTER TABLE api_calls_by_flow RENAME TO api_calls;
