-- Which attempt of its run made each step: two attempts whose calls interleave would be one run executed
-- twice at once (what leases prevent, and what scripts/chaos counts).
ALTER TABLE run_steps ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
