-- Labels on manifests: read from the image config at push (source_type 'manifest') or added
-- through the API ('api'). They go with their manifest.
CREATE TABLE manifest_labels (
    id           TEXT    PRIMARY KEY,
    manifest_id  BIGINT  NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    media_type   TEXT    NOT NULL DEFAULT 'text/plain',
    source_type  TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX manifest_labels_manifest ON manifest_labels(manifest_id);
CREATE INDEX manifest_labels_key ON manifest_labels(key, value);
