-- Daily API budgets (src/domain/budget.rs): urgent work (someone's change, someone waiting) is claimed
-- before routine work (reconciliation sweeps and the re-reads they queue, "Check"), and a run deferred
-- for want of calls is marked, so that a larger budget lets it go at once rather than at midnight.
ALTER TABLE runs ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN budget_deferred INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET priority = 1 WHERE status = 'queued' AND trigger_kind IN ('schedule', 'reconciliation');
-- The claim reads due runs urgent first, then oldest due first.
DROP INDEX runs_due;
CREATE INDEX runs_due ON runs (priority, not_before, id) WHERE status IN ('queued', 'running');
