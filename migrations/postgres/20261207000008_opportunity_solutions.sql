-- What the change feed last saw of an opportunity's Microsoft solutions (a JSON array of ids) and a
-- digest of its other fields that reach Partner Center: a change to the solutions alone of a linked
-- opportunity runs "Microsoft Solutions to Partner Center". NULL until the feed sees the row again.
ALTER TABLE crm_opportunities ADD COLUMN solutions TEXT;
ALTER TABLE crm_opportunities ADD COLUMN fingerprint TEXT;
