-- Multi-tenancy (issue 7), as SQLite's 0008: every row a department owns carries
-- `department`; what was stored before belongs to 'default'. A disclosure is identified by
-- (department, disclosure_id, revision). PostgreSQL changes the keys in place (SQLite
-- rebuilds its tables); the foreign keys that reference the old key of `disclosures` are
-- dropped first and made again on the new one.

ALTER TABLE disclosures ADD COLUMN department TEXT NOT NULL DEFAULT 'default';
ALTER TABLE deliveries ADD COLUMN department TEXT NOT NULL DEFAULT 'default';
ALTER TABLE search_docs ADD COLUMN department TEXT NOT NULL DEFAULT 'default';
ALTER TABLE search_pending ADD COLUMN department TEXT NOT NULL DEFAULT 'default';

ALTER TABLE deliveries DROP CONSTRAINT deliveries_disclosure_id_revision_fkey;
ALTER TABLE search_docs DROP CONSTRAINT search_docs_disclosure_id_revision_fkey;
ALTER TABLE search_pending DROP CONSTRAINT search_pending_disclosure_id_revision_fkey;

ALTER TABLE disclosures DROP CONSTRAINT disclosures_pkey;
ALTER TABLE disclosures ADD CONSTRAINT disclosures_pkey
    PRIMARY KEY (department, disclosure_id, revision);

ALTER TABLE deliveries DROP CONSTRAINT deliveries_disclosure_id_revision_channel_action_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_department_disclosure_revision_channel_action_key
    UNIQUE (department, disclosure_id, revision, channel, action);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_department_disclosure_revision_fkey
    FOREIGN KEY (department, disclosure_id, revision)
    REFERENCES disclosures (department, disclosure_id, revision);

ALTER TABLE search_docs DROP CONSTRAINT search_docs_disclosure_id_revision_key;
ALTER TABLE search_docs ADD CONSTRAINT search_docs_department_disclosure_revision_key
    UNIQUE (department, disclosure_id, revision);
ALTER TABLE search_docs ADD CONSTRAINT search_docs_department_disclosure_revision_fkey
    FOREIGN KEY (department, disclosure_id, revision)
    REFERENCES disclosures (department, disclosure_id, revision);

ALTER TABLE search_pending DROP CONSTRAINT search_pending_pkey;
ALTER TABLE search_pending ADD CONSTRAINT search_pending_pkey
    PRIMARY KEY (department, disclosure_id, revision);
ALTER TABLE search_pending ADD CONSTRAINT search_pending_department_disclosure_revision_fkey
    FOREIGN KEY (department, disclosure_id, revision)
    REFERENCES disclosures (department, disclosure_id, revision);

-- The indexes a department's queries filter by (the claim's deliveries_due stays global:
-- one queue for every department).
DROP INDEX deliveries_sibling;
CREATE INDEX deliveries_sibling ON deliveries (department, disclosure_id, channel, id);

CREATE INDEX deliveries_department ON deliveries (department, id);

DROP INDEX deliveries_published;
CREATE INDEX deliveries_published ON deliveries (department, disclosure_id, channel, delivered_at)
    INCLUDE (kind)
    WHERE action = 'publish' AND delivered_at IS NOT NULL;

DROP INDEX deliveries_delivered_by_disclosure;
CREATE INDEX deliveries_delivered_by_disclosure ON deliveries (department, disclosure_id, channel, revision)
    WHERE action = 'publish' AND status = 'delivered';

DROP INDEX disclosures_received;
CREATE INDEX disclosures_received ON disclosures (department, received_at);

-- Operator accounts belong to a department: the console shows and changes that department's
-- items only (the accounts made before are the default department's). Names stay unique
-- across departments, so a sign-in needs no department.
ALTER TABLE operators ADD COLUMN department TEXT NOT NULL DEFAULT 'default';
