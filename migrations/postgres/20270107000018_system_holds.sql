-- A system that answered "slow down" (429 with Retry-After) or "allocation spent" (Salesforce's
-- REQUEST_LIMIT_EXCEEDED) is held until then for every run of every instance, rather than each run
-- finding out with a call of its own (src/engine/budget.rs).
ALTER TABLE connections ADD COLUMN held_until TIMESTAMPTZ;
ALTER TABLE connections ADD COLUMN held_reason TEXT;
