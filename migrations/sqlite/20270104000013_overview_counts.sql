-- The Overview counts two things on every view; at a million runs and a hundred thousand opportunities
-- each count must read only the rows it counts, not the table.
-- Failed runs in the last 24 hours: an index range of (status, created_at).
CREATE INDEX runs_by_status_created ON runs (status, created_at);
-- Synced opportunities waiting for a fix: a partial index holding only them (the query repeats its
-- condition word for word, so both SQLite and PostgreSQL can use it).
CREATE INDEX crm_opportunities_to_fix ON crm_opportunities (crm_id)
    WHERE sync AND problems IS NOT NULL AND problems <> '[]';
