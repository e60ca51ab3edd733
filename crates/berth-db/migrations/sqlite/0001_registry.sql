-- Registry core schema. Times are milliseconds since the Unix epoch.

-- A namespace owns repositories: a user or an organization (accounts arrive with issue 4).
CREATE TABLE namespaces (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL DEFAULT 'user',
    created_at  BIGINT  NOT NULL
);

CREATE TABLE repositories (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace_id  BIGINT  NOT NULL REFERENCES namespaces(id),
    name          TEXT    NOT NULL UNIQUE,           -- full path, e.g. ns/team/app
    visibility    TEXT    NOT NULL DEFAULT 'private',
    created_at    BIGINT  NOT NULL,
    last_push_at  BIGINT,
    last_pull_at  BIGINT
);

-- Content-addressed blobs, shared by every repository that links them.
CREATE TABLE blobs (
    digest      TEXT    PRIMARY KEY,
    size        BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- Which storage locations hold a copy of a blob (geo-replication).
CREATE TABLE blob_placements (
    digest      TEXT    NOT NULL REFERENCES blobs(digest),
    location    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (digest, location)
);

-- A blob is readable through a repository only while linked to it (pushed or mounted there).
-- linked_at also protects a fresh, not yet referenced blob from garbage collection for a grace period.
CREATE TABLE repo_blobs (
    repo_id     BIGINT  NOT NULL REFERENCES repositories(id),
    digest      TEXT    NOT NULL REFERENCES blobs(digest),
    linked_at   BIGINT  NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_digest ON repo_blobs(digest);

-- Manifests are stored byte for byte. deleted_at marks a manifest deleted through the API: it is no
-- longer served, but kept for the time machine until garbage collection removes it.
CREATE TABLE manifests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id         BIGINT  NOT NULL REFERENCES repositories(id),
    digest          TEXT    NOT NULL,
    media_type      TEXT    NOT NULL,
    artifact_type   TEXT,
    config_digest   TEXT,
    subject_digest  TEXT,
    annotations     TEXT,                            -- JSON object, for the referrers answer
    size            BIGINT  NOT NULL,
    content         BLOB    NOT NULL,
    created_at      BIGINT  NOT NULL,
    deleted_at      BIGINT,
    UNIQUE (repo_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repo_id, subject_digest);

-- Everything a manifest references: config and layer blobs, child manifests of an index, its subject.
CREATE TABLE manifest_refs (
    manifest_id  BIGINT  NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,                   -- config | layer | manifest | subject
    position     INTEGER NOT NULL,
    digest       TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    media_type   TEXT    NOT NULL,
    PRIMARY KEY (manifest_id, kind, position)
);
CREATE INDEX manifest_refs_digest ON manifest_refs(digest);

-- Every position a tag ever had. The live tag is the row with end_at NULL; moving or deleting a tag
-- closes its row. Tag history (the time machine) and garbage collection read this table.
CREATE TABLE tags (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id          BIGINT  NOT NULL REFERENCES repositories(id),
    name             TEXT    NOT NULL,
    manifest_digest  TEXT    NOT NULL,
    start_at         BIGINT  NOT NULL,
    end_at           BIGINT,
    expires_at       BIGINT
);
CREATE UNIQUE INDEX tags_live ON tags(repo_id, name) WHERE end_at IS NULL;
CREATE INDEX tags_manifest ON tags(repo_id, manifest_digest);

-- Upload sessions: the bytes live in blob storage, the recorded length and hash state here, so any
-- instance can continue a session and a crash never leaves the length ahead of the bytes.
CREATE TABLE uploads (
    id          TEXT    PRIMARY KEY,
    repo_id     BIGINT  NOT NULL REFERENCES repositories(id),
    size        BIGINT  NOT NULL DEFAULT 0,
    hash_algo   TEXT    NOT NULL,
    hash_state  BLOB,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
