-- Items the demo service lists.
CREATE TABLE demo_items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
