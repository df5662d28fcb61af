-- cosell's own writes to Partner Center referrals, by the referral's new updatedDateTime (in
-- microseconds since the epoch): the webhook event each one causes carries that time as its
-- ResourceChangeUtcDate, and is known as cosell's own without reading the referral again.
CREATE TABLE own_writes (
    referral_id TEXT NOT NULL,
    changed_us  BIGINT NOT NULL,
    written_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (referral_id, changed_us)
);
