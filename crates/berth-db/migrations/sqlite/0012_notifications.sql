-- Notifications (Quay's RepositoryNotification and NamespaceNotification): an event, a method
-- and its configuration, on a repository or (quota events) on a namespace.
CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid          TEXT    NOT NULL UNIQUE,
    repo_id       BIGINT  REFERENCES repositories(id) ON DELETE CASCADE,
    namespace     TEXT,                              -- namespace notifications: the org or user
    event         TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    title         TEXT    NOT NULL DEFAULT '',
    config        TEXT    NOT NULL,                  -- JSON, the method's settings (no secrets)
    event_config  TEXT    NOT NULL DEFAULT '{}',     -- JSON, the event's filter
    secret        TEXT    NOT NULL,                  -- sealed: webhook signing key, custom headers
    failures      BIGINT  NOT NULL DEFAULT 0,        -- consecutive failed deliveries
    disabled_at   BIGINT,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX notifications_repo ON notifications(repo_id, event);
CREATE INDEX notifications_namespace ON notifications(namespace, event);

-- The outbox: one row per (event, notification), written in the transaction of the change that
-- caused the event, delivered in order per notification.
CREATE TABLE notification_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id  BIGINT  NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    event_id         TEXT    NOT NULL,               -- the same on every attempt and redelivery
    event            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,               -- JSON event_data
    state            TEXT    NOT NULL DEFAULT 'pending', -- pending | delivered | failed
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_at          BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    finished_at      BIGINT
);
CREATE INDEX notification_deliveries_queue ON notification_deliveries(notification_id, state, id);
CREATE INDEX notification_deliveries_due ON notification_deliveries(state, next_at);

-- Each attempt, for the delivery log (the last 100 per notification are kept).
CREATE TABLE notification_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id  BIGINT  NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    delivery_id      BIGINT  NOT NULL,
    event_id         TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    at               BIGINT  NOT NULL,
    status           BIGINT,                         -- the HTTP status, when one came
    error            TEXT,
    latency_ms       BIGINT  NOT NULL
);
CREATE INDEX notification_attempts_of ON notification_attempts(notification_id, id);

-- Tags a repo_image_expiry notification has told about (each tag once per expiry it is given).
CREATE TABLE notification_tag_notices (
    notification_id  BIGINT  NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    tag              TEXT    NOT NULL,
    expires_at       BIGINT  NOT NULL,
    PRIMARY KEY (notification_id, tag, expires_at)
);

-- In-app notifications of a user (Quay's user notifications).
CREATE TABLE user_notifications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid          TEXT    NOT NULL UNIQUE,
    account_id    BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    organization  TEXT,
    metadata      TEXT    NOT NULL,                  -- JSON
    dismissed     BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX user_notifications_of ON user_notifications(account_id, id);

-- Addresses a repository's email notifications may go to: confirmed by the link mailed to them.
CREATE TABLE authorized_emails (
    repo_id    BIGINT  NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    code       TEXT    NOT NULL UNIQUE,
    confirmed  BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (repo_id, email)
);
