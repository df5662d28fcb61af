-- The CRM's opportunities as the change feed last saw them: what the Opportunities page lists and
-- searches, with the last readiness check and the last sync result. The CRM stays the record of truth.
CREATE TABLE crm_opportunities (
    crm_id         TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    name_key       TEXT NOT NULL,
    referral_id    TEXT,
    referral_link  TEXT,
    customer_id    TEXT,
    sync           BOOLEAN NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('open', 'won', 'lost')),
    version        TEXT,
    problems       TEXT,
    last_result    TEXT,
    last_run_id    BIGINT,
    last_synced_at TIMESTAMPTZ,
    pushed         TEXT,
    written_version TEXT,
    seen_at        TIMESTAMPTZ NOT NULL
);
-- The list is ordered by name (keyset on name_key, crm_id); referral ids are looked up exactly.
CREATE INDEX crm_opportunities_by_name ON crm_opportunities (name_key, crm_id);
CREATE INDEX crm_opportunities_by_referral ON crm_opportunities (referral_id) WHERE referral_id IS NOT NULL;
-- A fix to an account (its country, say) re-runs the synced opportunities of that customer.
CREATE INDEX crm_opportunities_by_customer ON crm_opportunities (customer_id) WHERE customer_id IS NOT NULL;

-- Where each change feed resumes (a Dataverse delta link).
CREATE TABLE change_feeds (
    feed       TEXT PRIMARY KEY,
    delta_link TEXT NOT NULL,
    polled_at  TIMESTAMPTZ NOT NULL
);

-- Which instance reads a change feed right now (several instances share one database; one reads).
CREATE TABLE feed_leases (
    feed  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until TIMESTAMPTZ NOT NULL
);

-- Settings an admin changes in the dashboard (the value mapping), as JSON, with who changed them.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);

-- What an audit event was (an effect, a deliberate skip, a failure, a conflict) and, for updates, the
-- field-level changes.
ALTER TABLE audit_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'effect'
    CHECK (outcome IN ('effect', 'skip', 'failure', 'conflict'));
ALTER TABLE audit_events ADD COLUMN changes TEXT;
CREATE INDEX audit_by_direction ON audit_events (direction, id DESC);
CREATE INDEX audit_by_outcome ON audit_events (outcome, id DESC);

-- One run at a time per record and flow: a second change to the same opportunity (or event for the same
-- referral) waits for the first run, which might be creating the referral (or opportunity) right now.
CREATE UNIQUE INDEX runs_one_running_per_record ON runs (flow, record_id)
    WHERE status = 'running' AND record_id IS NOT NULL AND parent_run_id IS NULL;
