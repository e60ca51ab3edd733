-- Identity and access. Users, organizations and robot accounts share one name space (as in Quay):
-- a user or organization name is also the name of its namespace; a robot is named `owner+short`.
-- Flags are BIGINT 0/1 so that one query text reads them on SQLite and PostgreSQL.
CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,                -- user | org | robot
    email           TEXT,
    password_hash   TEXT,                            -- argon2id PHC string; NULL: no password login
    superuser       BIGINT  NOT NULL DEFAULT 0,
    enabled         BIGINT  NOT NULL DEFAULT 1,
    owner_id        BIGINT  REFERENCES accounts(id), -- robots: the user or organization owning them
    token_hash      TEXT,                            -- robots: SHA-256 of the token (lookup)
    token_sealed    TEXT,                            -- robots: the token, sealed with the database secret
    description     TEXT,
    metadata        TEXT,                            -- robots: free-form JSON
    tag_expiration_s BIGINT,
    failed_logins   BIGINT  NOT NULL DEFAULT 0,      -- consecutive failures since the last success
    last_failed_at  BIGINT,
    created_at      BIGINT  NOT NULL,
    last_accessed   BIGINT
);
CREATE UNIQUE INDEX accounts_email ON accounts(email) WHERE kind = 'user' AND email IS NOT NULL;

-- Identities at external providers (LDAP, OIDC) linked to Berth users.
CREATE TABLE external_logins (
    service         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    account_id      BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    metadata        TEXT,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (service, subject)
);

CREATE TABLE teams (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    role            TEXT    NOT NULL,                -- member | creator | admin
    description     TEXT    NOT NULL DEFAULT '',
    sync_service    TEXT,                            -- team synced from an LDAP/OIDC group
    sync_group      TEXT,
    created_at      BIGINT  NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE team_members (
    team_id         BIGINT  NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    account_id      BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, account_id)
);
CREATE INDEX team_members_account ON team_members(account_id);

-- Direct repository permissions: read | write | admin.
CREATE TABLE repo_account_perms (
    repo_id         BIGINT  NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    account_id      BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role            TEXT    NOT NULL,
    PRIMARY KEY (repo_id, account_id)
);
CREATE INDEX repo_account_perms_account ON repo_account_perms(account_id);

CREATE TABLE repo_team_perms (
    repo_id         BIGINT  NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    team_id         BIGINT  NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    role            TEXT    NOT NULL,
    PRIMARY KEY (repo_id, team_id)
);
CREATE INDEX repo_team_perms_team ON repo_team_perms(team_id);

-- Default permissions ("prototypes") an organization applies to each new repository: to everyone's
-- new repositories (activating_id NULL) or only to those created by one account.
CREATE TABLE default_perms (
    uuid            TEXT    PRIMARY KEY,
    org_id          BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    activating_id   BIGINT  REFERENCES accounts(id) ON DELETE CASCADE,
    delegate_account_id BIGINT REFERENCES accounts(id) ON DELETE CASCADE,
    delegate_team_id    BIGINT REFERENCES teams(id) ON DELETE CASCADE,
    role            TEXT    NOT NULL
);

-- Secrets handed to clients are stored as their SHA-256 only.
CREATE TABLE app_tokens (
    uuid            TEXT    PRIMARY KEY,
    account_id      BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    title           TEXT    NOT NULL,
    token_hash      TEXT    NOT NULL UNIQUE,
    token_sealed    TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT,
    last_accessed   BIGINT
);

-- OAuth-style bearer tokens for /api/v1 with their scopes (space separated).
CREATE TABLE api_tokens (
    uuid            TEXT    PRIMARY KEY,
    account_id      BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    scopes          TEXT    NOT NULL,
    token_hash      TEXT    NOT NULL UNIQUE,
    created_by      BIGINT  REFERENCES accounts(id) ON DELETE SET NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT,
    last_accessed   BIGINT
);

-- Keys that sign registry tokens. The newest unexpired key signs; every unexpired key verifies, so
-- a rotation never invalidates tokens already handed out.
CREATE TABLE service_keys (
    kid             TEXT    PRIMARY KEY,
    service         TEXT    NOT NULL,
    private_sealed  TEXT    NOT NULL,
    public_key      TEXT    NOT NULL,                -- hex of the uncompressed P-256 point
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);

-- Secrets the instances share when the config does not provide them (DATABASE_SECRET_KEY).
CREATE TABLE instance_secrets (
    name            TEXT    PRIMARY KEY,
    value           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);

-- The audit log: who did what, from where, when.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    performer       TEXT,                            -- account name; NULL: anonymous
    performer_kind  TEXT,                            -- user | robot | org | anonymous
    namespace       TEXT,
    repository      TEXT,
    ip              TEXT,
    metadata        TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_namespace ON audit_log(namespace, at);
CREATE INDEX audit_log_repository ON audit_log(repository, at);
CREATE INDEX audit_log_performer ON audit_log(performer, at);

ALTER TABLE repositories ADD COLUMN description TEXT;
