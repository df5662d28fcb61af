-- One connection per outside system, made by an admin through OAuth consent. The refresh token is sealed
-- (AES-256-GCM, see src/crypto.rs); token_version makes rotation a compare-and-swap across instances.
CREATE TABLE connections (
    system               TEXT PRIMARY KEY CHECK (system IN ('partner_center', 'dynamics365', 'salesforce')),
    account_name         TEXT NOT NULL,
    account_username     TEXT NOT NULL,
    account_object_id    TEXT NOT NULL,
    tenant_id            TEXT NOT NULL,
    instance_url         TEXT,
    refresh_token_sealed TEXT NOT NULL,
    token_version        BIGINT NOT NULL,
    connected_by         TEXT NOT NULL,
    connected_at         TIMESTAMPTZ NOT NULL,
    refreshed_at         TIMESTAMPTZ,
    diagnosis            TEXT,
    diagnosed_at         TIMESTAMPTZ
);
