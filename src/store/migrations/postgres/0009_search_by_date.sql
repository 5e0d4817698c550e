-- Kept in step with SQLite's 0009 (search_docs ids by date): PostgreSQL orders a search
-- tier by publish date in its query, so its index is unchanged. One harmless statement,
-- as a migration must have one.
SELECT 1;
