INSERT INTO demo_items (id, name) VALUES (1, 'first');
INSERT INTO demo_items (id, name) VALUES (2, 'second');
