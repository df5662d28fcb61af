-- PostgreSQL announces queued runs to the other instances sharing its database (see the PostgreSQL
-- migration of this number). A SQLite file has one instance, whose workers the engine wakes itself.
SELECT 1;
