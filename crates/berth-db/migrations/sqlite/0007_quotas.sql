-- Storage quotas per namespace (Quay's namespace quota model): a limit in bytes, with warning and
-- reject thresholds as percentages of it. Usage is computed from the manifests present, each blob
-- counted once per namespace.
CREATE TABLE namespace_quotas (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace    TEXT    NOT NULL UNIQUE,
    limit_bytes  BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL
);

CREATE TABLE quota_limits (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    quota_id           BIGINT  NOT NULL REFERENCES namespace_quotas(id) ON DELETE CASCADE,
    kind               TEXT    NOT NULL,             -- Warning | Reject
    threshold_percent  BIGINT  NOT NULL,
    created_at         BIGINT  NOT NULL
);
CREATE INDEX quota_limits_quota ON quota_limits(quota_id);
