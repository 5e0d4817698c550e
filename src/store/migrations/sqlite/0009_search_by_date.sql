-- The callback's search reads its matches newest first straight out of FTS5 (issue 4):
-- search_docs.id (= the FTS rowid) is now day × 2^24 + a counter, the day being the
-- revision's publish date (else the day it was received). The index is emptied here and
-- rebuilt by the store at start (refresh_search_index) with the new ids.
DELETE FROM search_fts;
DELETE FROM search_docs;
