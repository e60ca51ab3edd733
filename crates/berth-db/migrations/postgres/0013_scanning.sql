-- The built-in vulnerability scanner (PostgreSQL twin of the SQLite migration).

-- Vulnerability records (OSV), one row per record id, imported from the configured sources.
CREATE TABLE vuln_records (
    id           TEXT    PRIMARY KEY,                -- OSV id: GHSA-…, PYSEC-…, RUSTSEC-…, ALSA-…
    source       TEXT    NOT NULL,                   -- the source it was imported from
    modified     BIGINT  NOT NULL,                   -- the record's `modified`, ms since the epoch
    summary      TEXT    NOT NULL DEFAULT '',
    details      TEXT    NOT NULL DEFAULT '',
    severity     TEXT    NOT NULL DEFAULT 'Unknown', -- Unknown | Negligible | Low | Medium | High | Critical
    score        DOUBLE PRECISION,                   -- CVSS base score, when a vector gave one
    vector       TEXT    NOT NULL DEFAULT '',        -- that vector
    aliases      TEXT    NOT NULL DEFAULT '[]',      -- JSON: aliases and related ids (CVE-…)
    link         TEXT    NOT NULL DEFAULT '',        -- the record's references, space separated
    imported_at  BIGINT  NOT NULL
);
CREATE INDEX vuln_records_source ON vuln_records(source);

-- What each record affects: one row per (record, ecosystem, package), with the ranges.
CREATE TABLE vuln_affected (
    record_id  TEXT    NOT NULL REFERENCES vuln_records(id) ON DELETE CASCADE,
    ecosystem  TEXT    NOT NULL,                     -- `PyPI`, `Debian:12`, `AlmaLinux:9`, …
    package    TEXT    NOT NULL,                     -- as the ecosystem names it (PyPI normalized)
    affected   TEXT    NOT NULL                      -- JSON: ranges, versions, fixed version
);
CREATE INDEX vuln_affected_package ON vuln_affected(ecosystem, package);
CREATE INDEX vuln_affected_record ON vuln_affected(record_id);

-- Each configured source's last import.
CREATE TABLE vuln_sources (
    source        TEXT    PRIMARY KEY,
    imported_at   BIGINT  NOT NULL,                  -- last successful import
    newest        BIGINT  NOT NULL DEFAULT 0,        -- newest `modified` seen
    records       BIGINT  NOT NULL DEFAULT 0,
    last_error    TEXT,
    attempted_at  BIGINT  NOT NULL,
    changed_at    BIGINT  NOT NULL DEFAULT 0         -- last import that wrote or removed records
);

-- What each layer holds, by digest: a layer shared by many images is indexed once.
CREATE TABLE layer_index (
    digest       TEXT    PRIMARY KEY,
    state        TEXT    NOT NULL DEFAULT 'queued',  -- queued | indexed | failed | unsupported | too_large
    version      BIGINT  NOT NULL DEFAULT 0,         -- the indexer's version that wrote it
    content      TEXT,                               -- JSON: the layer's packages, whiteouts, os-release
    error        TEXT,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    bytes        BIGINT  NOT NULL DEFAULT 0,         -- uncompressed bytes read
    took_ms      BIGINT  NOT NULL DEFAULT 0,
    queued_at    BIGINT  NOT NULL,
    indexed_at   BIGINT
);
CREATE INDEX layer_index_state ON layer_index(state);

-- Each image manifest's last match against the vulnerability data (by digest: the same bytes in
-- any repository hold the same layers): what notifications compare against, what policies and
-- the tag list read.
CREATE TABLE manifest_scan (
    digest      TEXT    PRIMARY KEY,
    status      TEXT    NOT NULL,                    -- queued | scanned | failed | unsupported | manifest_layer_too_large
    vulns       TEXT    NOT NULL DEFAULT '[]',       -- JSON: [[id, severity, fixable]] sorted by id
    counts      TEXT    NOT NULL DEFAULT '{}',       -- JSON: severity -> count
    checked_at  BIGINT  NOT NULL                     -- 0: to be matched
);
CREATE INDEX manifest_scan_status ON manifest_scan(status);
CREATE INDEX manifest_scan_checked ON manifest_scan(checked_at);

-- A namespace's security policy: pulls (or pushes) of images with unfixed vulnerabilities at or
-- above a severity are refused, except the allowed ids.
CREATE TABLE security_policies (
    namespace     TEXT    PRIMARY KEY,
    min_severity  TEXT    NOT NULL,
    block_pull    BIGINT  NOT NULL DEFAULT 1,
    block_push    BIGINT  NOT NULL DEFAULT 0,
    only_fixable  BIGINT  NOT NULL DEFAULT 0,        -- 1: only vulnerabilities with a known fix count
    allowlist     TEXT    NOT NULL DEFAULT '[]',     -- JSON: ids (CVE-…, GHSA-…) that never count
    updated_at    BIGINT  NOT NULL
);
