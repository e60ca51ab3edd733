-- The durable job queue. A job is claimed by moving it to 'running' with a lease; a worker that
-- dies leaves its lease to expire, and the job is claimed again. dedup_key makes enqueueing
-- idempotent while a job with the same key is queued or running.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    dedup_key     TEXT    NOT NULL,
    payload       TEXT    NOT NULL,                  -- JSON
    state         TEXT    NOT NULL DEFAULT 'queued', -- queued | running | done | failed
    attempts      BIGINT  NOT NULL DEFAULT 0,
    max_attempts  BIGINT  NOT NULL DEFAULT 12,
    run_at        BIGINT  NOT NULL,
    locked_by     TEXT,
    locked_until  BIGINT,
    last_error    TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX jobs_dedup ON jobs(kind, dedup_key) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_ready ON jobs(state, run_at);

-- Singleton workers: one holder of a named lease at a time, across instances.
CREATE TABLE worker_leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL
);
