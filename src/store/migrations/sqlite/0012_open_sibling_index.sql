-- The sibling rule of the claim (no earlier open delivery of the same item and channel)
-- on an index of open deliveries only: small (delivered rows leave it), and shaped like
-- the rule, so that a plan made before the table has statistics cannot take the
-- department's id index for it instead (seen on PostgreSQL: every claim then read all of
-- a department's earlier deliveries). deliveries_sibling stays for the superseded check,
-- which looks at every status.
CREATE INDEX deliveries_open_sibling ON deliveries (department, disclosure_id, channel, id)
    WHERE status IN ('pending', 'retrying', 'in_flight');
