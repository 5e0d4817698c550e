-- The callback's search reads its matches newest first straight out of FTS5 (issue 4):
-- search_docs.id (= the FTS rowid) is now day × 2^24 + a counter, the day being the
-- revision's publish date (else the day it was received), and each indexed item carries
-- its department's token (search.rs, department_token) in a `dept` column, so FTS5 keeps
-- to one department before anything is joined. The index is emptied here and rebuilt by
-- the store at start (refresh_search_index).
DROP TABLE search_fts;
CREATE VIRTUAL TABLE search_fts USING fts5(title, body, dept, tokenize = 'unicode61 remove_diacritics 0');
DELETE FROM search_docs;
