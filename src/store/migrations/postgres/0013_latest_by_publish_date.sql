-- The callback menu's "latest N published": a department's disclosures walked newest
-- publish date first (NULLS LAST, as latest_published orders), stopping after N.
-- Without it every published item of the department was read and sorted per answer.
CREATE INDEX disclosures_by_publish_date ON disclosures (department, publish_date DESC NULLS LAST);
