//! Conformance tests for the OCI Distribution Spec v1.1 / Docker Registry HTTP API v2 surface of
//! Berth. Every test starts its own server (see `common::Berth`) and talks plain HTTP to it.
//!
//! Layout:
//! - `base`: `/v2/`, health, metrics, repository-name rules, unsupported methods
//! - `blobs`: blob reads, ranges, deletes, repository isolation
//! - `uploads`: monolithic, chunked and streamed uploads, mounts, upload sessions
//! - `manifests`: manifest kinds, byte-for-byte storage, tags, deletes
//! - `manifest_errors`: manifest validation errors
//! - `listing`: tags/list and `_catalog` with pagination
//! - `referrers`: the referrers API and `OCI-Subject`
//! - `lifecycle`: deletes followed by re-pushes, mounts and references
//! - `concurrency`: concurrent writers and a crash restart
//! - `challenges`: token challenges (mount scopes, insufficient_scope) and connections kept usable
//!   after an answer sent before the body was read

mod common;

#[path = "conformance/util.rs"]
mod util;

#[path = "conformance/base.rs"]
mod base;

#[path = "conformance/blobs.rs"]
mod blobs;

#[path = "conformance/uploads.rs"]
mod uploads;

#[path = "conformance/manifests.rs"]
mod manifests;

#[path = "conformance/manifest_errors.rs"]
mod manifest_errors;

#[path = "conformance/listing.rs"]
mod listing;

#[path = "conformance/referrers.rs"]
mod referrers;

#[path = "conformance/concurrency.rs"]
mod concurrency;

#[path = "conformance/lifecycle.rs"]
mod lifecycle;

#[path = "conformance/challenges.rs"]
mod challenges;
