-- Pull-through cache organizations (Quay's ProxyCacheConfig): pulls of a repository of the
-- organization are answered from the upstream registry and kept; pushes are refused.
CREATE TABLE proxy_caches (
    namespace          TEXT    PRIMARY KEY,          -- the organization's name
    upstream_registry  TEXT    NOT NULL,             -- host[:port][/namespace]
    username           TEXT,
    password_sealed    TEXT,                         -- sealed with the database secret
    insecure           BIGINT  NOT NULL DEFAULT 0,   -- plain http to the upstream
    expiration_s       BIGINT  NOT NULL DEFAULT 86400, -- a cached tag lives this long after its last confirmed pull
    created_at         BIGINT  NOT NULL
);
