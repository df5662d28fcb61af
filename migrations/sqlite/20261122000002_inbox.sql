-- Verified Partner Center webhook deliveries, stored before we answer 200. One row per distinct event:
-- the same delivery received again (Partner Center retries, duplicates) has one effect.
CREATE TABLE inbox (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_name               TEXT NOT NULL,
    referral_id              TEXT NOT NULL,
    resource_uri             TEXT NOT NULL,
    resource_change_utc_date TEXT NOT NULL,
    dedupe_key               TEXT NOT NULL UNIQUE,
    body                     TEXT NOT NULL,
    received_at              TEXT NOT NULL,
    deliveries               INTEGER NOT NULL DEFAULT 1,
    processed_at             TEXT
);

CREATE INDEX inbox_unprocessed ON inbox (id) WHERE processed_at IS NULL;
CREATE INDEX inbox_by_referral ON inbox (referral_id, id);
