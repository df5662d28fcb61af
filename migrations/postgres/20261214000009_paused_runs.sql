-- A run waiting for a person to act on a connection (an expired password, withdrawn consent, a missing
-- role): still in the queue, but claimed only once that system's connection works again. Holds the
-- system's code; the dashboard shows such a run as "paused". Nothing is failed or dropped for it.
ALTER TABLE runs ADD COLUMN paused_for TEXT;
CREATE INDEX runs_paused ON runs (paused_for) WHERE paused_for IS NOT NULL;
