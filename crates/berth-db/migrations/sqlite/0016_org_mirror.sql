-- Organization mirroring (Quay's OrgMirrorConfig): every repository of an upstream namespace,
-- found through Quay's or Harbor's API or /v2/_catalog and filtered by globs, is mirrored into
-- the organization. Each discovered repository gets a repository mirror of its own (marked with
-- the organization, state ORG_MIRROR) that syncs like any other; the organization's row holds the
-- discovery cycle, claimed and released with compare-and-set on sync_txn like repo_mirrors.
CREATE TABLE org_mirrors (
    namespace            TEXT    PRIMARY KEY,        -- the organization's name
    is_enabled           BIGINT  NOT NULL DEFAULT 1,
    registry_type        TEXT    NOT NULL,           -- quay | harbor | oci
    registry_url         TEXT    NOT NULL,           -- scheme://host[:port]
    external_namespace   TEXT    NOT NULL,
    username             TEXT,
    password_sealed      TEXT,                       -- sealed with the database secret
    registry_config      TEXT    NOT NULL DEFAULT '{}', -- JSON: verify_tls, proxy
    repository_filters   TEXT    NOT NULL DEFAULT '[]', -- JSON array of fnmatch patterns
    robot_id             BIGINT  NOT NULL REFERENCES accounts(id),
    visibility           TEXT    NOT NULL DEFAULT 'private', -- of the repositories it creates
    sync_interval_s      BIGINT  NOT NULL,
    sync_start_at        BIGINT,
    sync_lease_until     BIGINT,
    sync_retries_remaining BIGINT NOT NULL DEFAULT 3,
    sync_status          TEXT    NOT NULL DEFAULT 'NEVER_RUN',
    sync_txn             TEXT    NOT NULL,
    timeout_s            BIGINT  NOT NULL DEFAULT 300, -- Quay's skopeo_timeout: discovery and per tag
    last_message         TEXT,                       -- what the last discovery found or failed on
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);

-- What discovery found (Quay's OrgMirrorRepository): DISCOVERED repositories are mirrored; SKIP
-- ones left the upstream namespace or the filters (their local repository and tags stay).
CREATE TABLE org_mirror_repos (
    namespace      TEXT    NOT NULL REFERENCES org_mirrors(namespace) ON DELETE CASCADE,
    name           TEXT    NOT NULL,                 -- the repository's name under the namespace
    status         TEXT    NOT NULL DEFAULT 'DISCOVERED',
    discovered_at  BIGINT  NOT NULL,
    status_message TEXT,
    PRIMARY KEY (namespace, name)
);

-- A repository mirror created by its organization's mirror (NULL: configured on its own).
ALTER TABLE repo_mirrors ADD COLUMN org_namespace TEXT;

-- A cache organization's further upstreams, tried in order when the ones before cannot answer
-- (Berth): JSON array of {upstream_registry, username, password_sealed, insecure}.
ALTER TABLE proxy_caches ADD COLUMN fallbacks TEXT NOT NULL DEFAULT '[]';
