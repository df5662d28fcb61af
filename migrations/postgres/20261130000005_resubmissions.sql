-- A run is resubmitted at most once: a second click, a second admin or a second instance cannot queue the
-- same work twice. (A resubmission that fails again is resubmitted in its turn.)
CREATE UNIQUE INDEX runs_one_resubmission ON runs (resubmitted_from) WHERE resubmitted_from IS NOT NULL;
