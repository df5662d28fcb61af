-- Alerts (src/domain/alerts.rs): one open alert per cause, kept by a partial unique index so that
-- instances judging the rules at the same moment open it once; resolved when the cause clears.
CREATE TABLE alerts (
    id              BIGSERIAL PRIMARY KEY,
    cause           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    title           TEXT NOT NULL,
    detail          TEXT NOT NULL,
    fix_href        TEXT NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL,
    resolved_at     TIMESTAMPTZ,
    acknowledged_at TIMESTAMPTZ,
    acknowledged_by TEXT
);
CREATE UNIQUE INDEX alerts_one_open_per_cause ON alerts (cause) WHERE resolved_at IS NULL;
CREATE INDEX alerts_newest ON alerts (id DESC);

-- Each message about an alert, per channel: written in the same transaction as the alert's change, so a
-- crash loses none; sent by whichever instance claims it (a lease), retried with backoff.
CREATE TABLE alert_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    alert_id     BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel      TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    event        TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    not_before   TIMESTAMPTZ NOT NULL,
    lease_owner  TEXT,
    lease_until  TIMESTAMPTZ,
    sent_at      TIMESTAMPTZ,
    failed_at    TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (not_before, id)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX alert_deliveries_of_alert ON alert_deliveries (alert_id);

-- The "webhook silent" rule reads the latest deliveries by when they arrived.
CREATE INDEX inbox_received ON inbox (received_at);
