ALTER TABLE demo_items ADD COLUMN created_by TEXT;
CREATE INDEX demo_items_name ON demo_items (name);
