-- Live pages ask once a second whether anything changed (Store::activity_mark); the newest time the
-- change feed saw an opportunity must be an index lookup, not a read of the table.
CREATE INDEX crm_opportunities_seen ON crm_opportunities (seen_at);
