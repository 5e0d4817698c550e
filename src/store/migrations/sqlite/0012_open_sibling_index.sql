-- The sibling rule of the claim (no earlier open delivery of the same item and channel)
-- on an index of open deliveries only: small (delivered rows leave it) and shaped like
-- the rule. The full deliveries_sibling goes: the superseded check, which looks at every
-- status, finds a disclosure's few deliveries by the unique key (department,
-- disclosure_id, ...), and each index more is written on every claim and completion.
CREATE INDEX deliveries_open_sibling ON deliveries (department, disclosure_id, channel, id)
    WHERE status IN ('pending', 'retrying', 'in_flight');
DROP INDEX deliveries_sibling;
