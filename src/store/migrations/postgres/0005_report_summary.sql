-- SQLite's 0005 adds `report_published`, a summary of the delivered ledger kept up to date
-- on ingest and on first delivery, so that SQLite's report is one covering-index scan.
-- PostgreSQL deliberately has no such table: PostgresStore::published_groups computes the
-- same groups from `deliveries` directly (the SELECT SQLite uses to fill its summary,
-- grouped; index deliveries_published of 0003), with identical results, and a delivered
-- completion stays one statement. This migration only keeps the numbers aligned.
SELECT 1;
