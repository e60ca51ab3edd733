-- Auto-prune policies (Quay's model): per namespace or per repository, delete live tags beyond the
-- newest `value` (number_of_tags) or older than `value` (creation_date, a duration such as 2w),
-- optionally only tags whose name matches (or does not match) a pattern.
CREATE TABLE autoprune_policies (
    uuid             TEXT    PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    repository       TEXT,
    method           TEXT    NOT NULL,
    value            TEXT    NOT NULL,
    tag_pattern      TEXT,
    pattern_matches  BIGINT  NOT NULL DEFAULT 1,
    created_at       BIGINT  NOT NULL
);
CREATE INDEX autoprune_policies_ns ON autoprune_policies(namespace);
