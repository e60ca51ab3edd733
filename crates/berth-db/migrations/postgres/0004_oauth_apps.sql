-- OAuth applications of organizations (Quay's /api/v1/organization/{org}/applications): a client
-- id and secret, and the API tokens minted for them.
CREATE TABLE oauth_apps (
    client_id       TEXT    PRIMARY KEY,
    org_id          BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    application_uri TEXT    NOT NULL DEFAULT '',
    redirect_uri    TEXT    NOT NULL DEFAULT '',
    avatar_email    TEXT,
    secret_sealed   TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX oauth_apps_org ON oauth_apps(org_id);

ALTER TABLE api_tokens ADD COLUMN app_client_id TEXT REFERENCES oauth_apps(client_id) ON DELETE CASCADE;
CREATE INDEX api_tokens_app ON api_tokens(app_client_id);
