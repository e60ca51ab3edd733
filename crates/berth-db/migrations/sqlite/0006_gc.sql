-- Online garbage collection.

-- When a repository may next hold something to collect (NULL: nothing pending). Changes that can
-- leave garbage set it to now; a sweep sets it to the earliest moment something it kept for the
-- time machine or the grace period becomes collectable.
ALTER TABLE repositories ADD COLUMN next_gc_at BIGINT;
-- A deleted repository keeps its row, renamed out of the way, until its deletion job has removed
-- everything it held.
ALTER TABLE repositories ADD COLUMN deleted_at BIGINT;
CREATE INDEX repositories_next_gc ON repositories(next_gc_at);

-- Blobs that lost a link or a reference: candidates for deletion, checked again under lock.
CREATE TABLE gc_blob_queue (
    digest     TEXT    PRIMARY KEY,
    queued_at  BIGINT  NOT NULL
);

CREATE INDEX uploads_updated ON uploads(updated_at);

-- Totals over every collection run, on every instance.
CREATE TABLE gc_totals (
    id                 BIGINT  PRIMARY KEY,
    runs               BIGINT  NOT NULL DEFAULT 0,
    last_run_at        BIGINT,
    manifests_deleted  BIGINT  NOT NULL DEFAULT 0,
    tags_purged        BIGINT  NOT NULL DEFAULT 0,
    links_removed      BIGINT  NOT NULL DEFAULT 0,
    blobs_deleted      BIGINT  NOT NULL DEFAULT 0,
    bytes_freed        BIGINT  NOT NULL DEFAULT 0,
    uploads_removed    BIGINT  NOT NULL DEFAULT 0,
    repos_deleted      BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO gc_totals (id) VALUES (1);
