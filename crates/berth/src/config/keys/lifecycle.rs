//! Tag lifecycle and upkeep: the time machine, tag expiry, immutability, auto-prune, garbage
//! collection and quotas.

use super::super::values::{as_bool, as_string_list, duration, non_negative_i64, positive};
use super::*;

const UPKEEP: &str = "internal upkeep Berth does its own way";
const GC_ALWAYS: &str = "Berth frees a deleted repository's or namespace's name at once and collects its contents in the background";

fn autoprune_interval(c: &mut Config, k: &str, v: &Value, _: &Path) -> Result<(), ConfigError> {
    c.gc.autoprune_interval_s = positive(k, v)?;
    Ok(())
}

pub static KEYS: &[KeyDef] = &[
    // ---- acted on
    quay(
        "DEFAULT_TAG_EXPIRATION",
        S,
        "time machine window: how long deleted and moved tags can be restored (default 2w); one of TAG_EXPIRATION_OPTIONS",
        |c, k, v, _| {
            c.gc.default_window_s = duration(k, v)?;
            Ok(())
        },
    )
    .default_is(r#""2w""#),
    quay(
        "TAG_EXPIRATION_OPTIONS",
        L.or(S),
        "windows a user or organization may choose (default [0s, 1d, 1w, 2w, 4w])",
        |c, k, v, _| {
            let mut out = Vec::new();
            for s in as_string_list(k, v)? {
                out.push(duration(k, &Value::String(s))?);
            }
            c.auth.tag_expiration_options = out;
            Ok(())
        },
    )
    .default_is(r#"["0s", "1d", "1w", "2w", "4w"]"#),
    quay(
        "FEATURE_CHANGE_TAG_EXPIRATION",
        B,
        "users may set an expiration on tags (default true)",
        |c, k, v, _| {
            c.auth.change_tag_expiration = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE",
        B,
        "immutable tags keep, and may be given, an expiry (default false: a tag loses its expiry when it becomes immutable)",
        |c, k, v, _| {
            c.immutable_tags_can_expire = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "FEATURE_AUTO_PRUNE",
        B,
        "apply auto-prune policies in the background (default true in Berth)",
        |c, k, v, _| {
            c.gc.autoprune = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "AUTO_PRUNING_POLL_PERIOD",
        IZ,
        "seconds between auto-prune runs (default 30)",
        autoprune_interval,
    )
    .default_is("30"),
    berth(
        "AUTO_PRUNE_FREQUENCY_S",
        I,
        "Berth's earlier name of AUTO_PRUNING_POLL_PERIOD",
        autoprune_interval,
    ),
    quay(
        "FEATURE_GARBAGE_COLLECTION",
        B,
        "run the online garbage collector in the background (default true)",
        |c, k, v, _| {
            c.gc.enabled = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "GARBAGE_COLLECTION_FREQUENCY",
        N,
        "seconds between garbage-collection passes (default 30)",
        |c, k, v, _| {
            c.gc.interval_s = positive(k, v)?;
            Ok(())
        },
    )
    .default_is("30"),
    quay(
        "PUSH_TEMP_TAG_EXPIRATION_SEC",
        N,
        "grace period in seconds for blobs and untagged manifests not yet referenced (default 3600)",
        |c, k, v, _| {
            c.gc.grace_s = non_negative_i64(k, v)?;
            Ok(())
        },
    )
    .default_is("3600"),
    quay(
        "CLEAN_BLOB_UPLOAD_FOLDER",
        B,
        "remove abandoned upload sessions (default true)",
        |c, k, v, _| {
            c.gc.clean_uploads = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    berth(
        "BLOB_UPLOAD_STALE_AFTER_S",
        I,
        "an upload session untouched this many seconds is abandoned (default 172800)",
        |c, k, v, _| {
            c.gc.upload_stale_s = non_negative_i64(k, v)?;
            Ok(())
        },
    ),
    berth(
        "GC_FULL_SWEEP_S",
        I,
        "seconds between garbage-collection passes over every repository (default 3600)",
        |c, k, v, _| {
            c.gc.full_sweep_s = positive(k, v)?;
            Ok(())
        },
    ),
    quay(
        "FEATURE_QUOTA_MANAGEMENT",
        B,
        "namespace storage quotas: usage, limits, warnings and refusals (default true in Berth)",
        |c, k, v, _| {
            c.quota.enabled = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "FEATURE_VERIFY_QUOTA",
        B,
        "refuse pushes over a quota's reject threshold (default true)",
        |c, k, v, _| {
            c.quota.verify = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "FEATURE_EDIT_QUOTA",
        B,
        "superusers may create and change quotas through the API (default true)",
        |c, k, v, _| {
            c.quota.edit = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "DEFAULT_SYSTEM_REJECT_QUOTA_BYTES",
        I,
        "reject limit for namespaces without a quota of their own (default 0: none)",
        |c, k, v, _| {
            c.quota.system_reject_bytes = non_negative_i64(k, v)?;
            Ok(())
        },
    )
    .default_is("0"),
    // ---- (c): values Berth cannot honour stop the start
    guard(
        "DEFAULT_NAMESPACE_AUTOPRUNE_POLICY",
        MZ,
        "Berth gives new namespaces no auto-prune policy; tags this policy would prune would be kept",
        is_empty,
        "null",
    )
    .default_is("null"),
    guard(
        "FEATURE_QUOTA_SUPPRESS_FAILURES",
        B,
        "Berth refuses pushes over a reject limit; pushes this value lets through would fail",
        is_false,
        "false",
    )
    .default_is("false"),
    // ---- (b): capabilities this version lacks
    quay(
        "PERMANENTLY_DELETE_TAGS",
        B,
        "writers may delete a tag's past positions from the time machine for good (POST …/tag/{tag}/expire, the UI's Tag history); default false",
        |c, k, v, _| {
            c.auth.permanently_delete_tags = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    // ---- (a): no effect
    no_effect(
        "FEATURE_IMMUTABLE_TAGS",
        B,
        "tag immutability is always available in Berth",
    )
    .default_is("false"),
    no_effect(
        "RESET_CHILD_MANIFEST_EXPIRATION",
        B,
        "Berth keeps an index's child manifests as long as the index; they have no expiry of their own",
    )
    .default_is("false"),
    no_effect("FEATURE_NAMESPACE_GARBAGE_COLLECTION", B, GC_ALWAYS).default_is("true"),
    no_effect("FEATURE_REPOSITORY_GARBAGE_COLLECTION", B, GC_ALWAYS).default_is("true"),
    no_effect("NAMESPACE_GC_GRACE_PERIOD_ALLOWLIST", L, GC_ALWAYS).default_is("[]"),
    no_effect("NAMESPACE_GC_GRACE_PERIOD_SECONDS", N, GC_ALWAYS).default_is("0"),
    no_effect("BLOBUPLOAD_DELETION_DATE_THRESHOLD", NZ, UPKEEP),
    no_effect("FEATURE_CLEAR_EXPIRED_RAC_ENTRIES", B, UPKEEP).default_is("false"),
    no_effect("FEATURE_ENABLE_STALE_MPU_CLEANUP", B, UPKEEP).default_is("true"),
    no_effect("FEATURE_MANIFEST_SIZE_BACKFILL", B, UPKEEP).default_is("true"),
    no_effect("FEATURE_MANIFEST_SUBJECT_BACKFILL", B, UPKEEP).default_is("true"),
    no_effect("FEATURE_REPOSITORY_ACTION_COUNTER", B, UPKEEP).default_is("true"),
    no_effect("QUOTA_BACKFILL", B, UPKEEP).default_is("true"),
    no_effect("QUOTA_BACKFILL_BATCH_SIZE", IZ, UPKEEP),
    no_effect("QUOTA_BACKFILL_POLL_PERIOD", IZ, UPKEEP),
    no_effect("QUOTA_INVALIDATE_TOTALS", B, UPKEEP).default_is("true"),
    no_effect("QUOTA_REGISTRY_SIZE_POLL_PERIOD", IZ, UPKEEP),
    no_effect("QUOTA_TOTAL_DELAY_SECONDS", I, UPKEEP).default_is("1800"),
];
