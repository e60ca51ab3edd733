-- Immutable tags: per tag (set through the API), or by tag-name patterns of an organization,
-- user namespace or repository. An immutable tag cannot be moved, deleted or expired.
ALTER TABLE tags ADD COLUMN immutable BIGINT NOT NULL DEFAULT 0;

CREATE TABLE immutability_policies (
    uuid            TEXT    PRIMARY KEY,
    namespace       TEXT    NOT NULL,
    repository      TEXT,                            -- NULL: every repository of the namespace
    pattern         TEXT    NOT NULL,                -- a regular expression over tag names
    pattern_matches BIGINT  NOT NULL DEFAULT 1,      -- 1: tags matching are immutable; 0: tags not matching
    created_at      BIGINT  NOT NULL
);
CREATE INDEX immutability_policies_ns ON immutability_policies(namespace);
