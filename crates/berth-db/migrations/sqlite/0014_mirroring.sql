-- A repository's state (Quay's RepositoryState): NORMAL, READ_ONLY (nobody writes content) or
-- MIRROR (only its mirror's robot writes content).
ALTER TABLE repositories ADD COLUMN state TEXT NOT NULL DEFAULT 'NORMAL';

-- Repository mirroring (Quay's RepoMirrorConfig): one per repository. The sync lease
-- (sync_lease_until, Quay's sync_expiration_date) is renewed by the running sync while it works,
-- so a sync whose worker died is taken over once the lease lapses; sync_txn changes on every
-- claim, release and configuration change, and each is guarded by the value it read.
CREATE TABLE repo_mirrors (
    repo_id              BIGINT  PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    is_enabled           BIGINT  NOT NULL DEFAULT 1,
    external_reference   TEXT    NOT NULL,           -- host[:port]/path, no scheme
    username             TEXT,
    password_sealed      TEXT,                       -- sealed with the database secret
    registry_config      TEXT    NOT NULL DEFAULT '{}', -- JSON: verify_tls, unsigned_images, proxy
    robot_id             BIGINT  NOT NULL REFERENCES accounts(id),
    tag_globs            TEXT    NOT NULL,           -- JSON array of fnmatch patterns
    architecture_filter  TEXT    NOT NULL DEFAULT '[]', -- JSON array
    sync_interval_s      BIGINT  NOT NULL,
    sync_start_at        BIGINT,                     -- next run (ms); NULL after a cancel
    sync_lease_until     BIGINT,                     -- ms; set while a sync holds it
    sync_retries_remaining BIGINT NOT NULL DEFAULT 3,
    sync_status          TEXT    NOT NULL DEFAULT 'NEVER_RUN',
    sync_txn             TEXT    NOT NULL,
    sync_holder          TEXT,                       -- the worker holding the lease
    timeout_s            BIGINT  NOT NULL DEFAULT 300, -- Quay's skopeo_timeout_interval: per tag
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);
CREATE INDEX repo_mirrors_due ON repo_mirrors(sync_status, sync_start_at);

-- Each sync run, with its log (the last 20 per repository are kept).
CREATE TABLE mirror_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id       BIGINT  NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    txn           TEXT    NOT NULL,                  -- the claim's sync_txn
    holder        TEXT    NOT NULL,
    started_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    outcome       TEXT    NOT NULL DEFAULT 'running', -- running | success | failed | cancelled | abandoned
    tags_copied   BIGINT  NOT NULL DEFAULT 0,
    tags_unchanged BIGINT NOT NULL DEFAULT 0,
    tags_removed  BIGINT  NOT NULL DEFAULT 0,
    tags_failed   BIGINT  NOT NULL DEFAULT 0,
    blobs_copied  BIGINT  NOT NULL DEFAULT 0,
    bytes_copied  BIGINT  NOT NULL DEFAULT 0,
    log           TEXT    NOT NULL DEFAULT ''        -- lines, bounded
);
CREATE INDEX mirror_runs_repo ON mirror_runs(repo_id, id);
