-- Which flows are switched on, per CRM. The dashboard enforces the activation order (src/domain/flows.rs).
CREATE TABLE flow_states (
    crm        TEXT NOT NULL,
    flow       TEXT NOT NULL,
    active     INTEGER NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (crm, flow)
);

-- One run of one flow, with the input it started from (so it can be resubmitted) and its lease.
CREATE TABLE runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    flow             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'skipped')),
    trigger_kind     TEXT NOT NULL,
    input            TEXT NOT NULL,
    record_id        TEXT,
    parent_run_id    INTEGER REFERENCES runs (id),
    resubmitted_from INTEGER REFERENCES runs (id),
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       TEXT NOT NULL,
    lease_owner      TEXT,
    lease_until      TEXT,
    outcome          TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT
);
-- Keyset pagination (newest first) under each filter, and the workers' queue.
CREATE INDEX runs_newest ON runs (id DESC);
CREATE INDEX runs_by_flow ON runs (flow, id DESC);
CREATE INDEX runs_by_status ON runs (status, id DESC);
CREATE INDEX runs_by_record ON runs (record_id, id DESC);
CREATE INDEX runs_by_created ON runs (created_at, id);
CREATE INDEX runs_children ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX runs_due ON runs (not_before, id) WHERE status IN ('queued', 'running');

-- What a run did, call by call and decision by decision.
CREATE TABLE run_steps (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    seq         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'skipped', 'retry', 'failed')),
    detail      TEXT NOT NULL,
    api_calls   INTEGER NOT NULL,
    duration_ms BIGINT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Every effect on a record and every skip, with the run that caused it: the admin's answer to
-- "why isn't this synced?".
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    run_id      INTEGER REFERENCES runs (id),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    record_kind TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    direction   TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_newest ON audit_events (id DESC);
CREATE INDEX audit_by_record ON audit_events (record_id, id DESC);
CREATE INDEX audit_by_run ON audit_events (run_id) WHERE run_id IS NOT NULL;

-- API calls per connection per UTC day, against the plan's quota.
CREATE TABLE api_calls (
    system TEXT NOT NULL,
    day    TEXT NOT NULL,
    calls  BIGINT NOT NULL,
    PRIMARY KEY (system, day)
);
