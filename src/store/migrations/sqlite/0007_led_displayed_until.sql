-- When an item left a display channel (LED screen): expired, withdrawn or replaced by a
-- newer revision. The 公示 evidence: with delivered_at it says how long the public could
-- read it. Set once, on the publish delivery that put the item up.
ALTER TABLE deliveries ADD COLUMN displayed_until INTEGER;
