//! Repository mirroring and pull-through caches: whether each is on, how often due mirrors are looked for, what a failed
//! sync undoes, and indexes with absent children. Quay's keys; Berth copies through its own
//! registry client in process, so the keys about skopeo pushing back into the registry have no
//! effect.

use super::super::values::{as_bool, duration, positive};
use super::*;

const SKOPEO: &str = "setting of how Quay's skopeo pushes mirrored images back into Quay; Berth copies in process through its own push paths";

pub static KEYS: &[KeyDef] = &[
    quay(
        "FEATURE_REPO_MIRROR",
        B,
        "repository mirroring: repositories in MIRROR state follow another registry's repository (Berth default true; Quay's false)",
        |c, k, v, _| {
            c.mirror.enabled = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "FEATURE_ORG_MIRROR",
        B,
        "organization mirroring: every repository of a namespace on another registry (found through Quay's or Harbor's API, or /v2/_catalog) is mirrored into an organization (Berth default true; Quay's false; needs FEATURE_REPO_MIRROR)",
        |c, k, v, _| {
            c.mirror.org_enabled = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "ORG_MIRROR_INTERVAL",
        N,
        "seconds between looks for organization mirrors due a discovery, asked to sync now, or held by a discovery whose worker died (default 30)",
        |c, k, v, _| {
            c.mirror.org_interval = std::time::Duration::from_secs(positive(k, v)?);
            Ok(())
        },
    )
    .default_is("30"),
    quay(
        "REPO_MIRROR_INTERVAL",
        N,
        "seconds between looks for mirrors that are due, asked to sync now, or held by a sync whose worker died (default 30)",
        |c, k, v, _| {
            c.mirror.interval = std::time::Duration::from_secs(positive(k, v)?);
            Ok(())
        },
    )
    .default_is("30"),
    quay(
        "REPO_MIRROR_ROLLBACK",
        BZ,
        "a sync in which any tag failed puts back every tag it changed (default false: only the failed tags stay as they were)",
        |c, k, v, _| {
            c.mirror.rollback = !v.is_null() && as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    berth(
        "REPO_MIRROR_LEASE",
        S,
        "how long a running sync holds its mirror without renewing it (it renews every quarter of this); a sync whose worker died is taken over this long after its last renewal (default 60s)",
        |c, k, v, _| {
            c.mirror.lease = std::time::Duration::from_secs(
                u64::try_from(duration(k, v)?.max(1)).unwrap_or(60),
            );
            Ok(())
        },
    )
    .default_is(r#""60s""#),
    quay(
        "FEATURE_SPARSE_INDEX",
        B,
        "pushes may store an index whose child manifests the repository lacks (mirrors with an architecture filter store such indexes whatever this says)",
        |c, k, v, _| {
            c.mirror.sparse_index = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "FEATURE_PROXY_CACHE",
        B,
        "pull-through cache organizations (…/proxycache): pulls are answered from an upstream registry and kept (Berth default true; Quay's false)",
        |c, k, v, _| {
            c.proxy.enabled = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    berth(
        "PROXY_CACHE_SERVE_STALE",
        B,
        "when a cache's upstream is unreachable, times out, answers 429 or 5xx, or refuses its credentials, cached tags are served anyway (expired ones too, while stored), with a Warning header (default true)",
        |c, k, v, _| {
            c.proxy.serve_stale = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    berth(
        "PROXY_CACHE_MIRROR_ORG",
        SZ,
        "a cache organization that also serves names whose first component is no namespace here: /v2/library/alpine/... is answered as <org>/library/alpine, so podman ([[registry.mirror]]) and containerd can use Berth as a registry mirror (default: none)",
        |c, k, v, _| {
            c.proxy.mirror_org = if v.is_null() {
                None
            } else {
                Some(super::super::values::as_string(k, v)?).filter(|s| !s.is_empty())
            };
            Ok(())
        },
    )
    .default_is("null"),
    no_effect("REPO_MIRROR_SERVER_HOSTNAME", SZ, SKOPEO).default_is("null"),
    no_effect("REPO_MIRROR_TLS_VERIFY", B, SKOPEO).default_is("true"),
];
