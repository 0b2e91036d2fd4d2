-- State of the snapshot sync service (read by the post_deploy check).
CREATE TABLE woofs.sync_state (
    source text PRIMARY KEY,
    last_synced_at timestamptz
);
INSERT INTO woofs.sync_state (source) VALUES ('snapshots');
