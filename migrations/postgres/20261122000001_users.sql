-- People who have signed in to the dashboard. Keyed by tenant id + object id (immutable Entra ids).
CREATE TABLE users (
    tenant_id           TEXT NOT NULL,
    object_id           TEXT NOT NULL,
    name                TEXT NOT NULL,
    username            TEXT NOT NULL,
    access              TEXT NOT NULL CHECK (access IN ('none', 'viewer', 'admin')),
    first_sign_in_at    TIMESTAMPTZ NOT NULL,
    last_sign_in_at     TIMESTAMPTZ NOT NULL,
    -- Sessions that began before this instant are no longer valid ("sign out everywhere").
    sessions_revoked_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, object_id)
);

CREATE INDEX users_by_last_sign_in ON users (last_sign_in_at DESC, tenant_id, object_id);
