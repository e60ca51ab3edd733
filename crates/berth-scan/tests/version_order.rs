//! Every version-order table, replayed: real versions compared by each ecosystem's own tool
//! (dpkg, rpm 4.18, Python `packaging`, Maven 3.8) and apk-tools' own cases. No mismatch is
//! allowed.

use berth_scan::{Scheme, compare};
use std::cmp::Ordering;

fn table(name: &str) -> Vec<(String, serde_json::Value, String)> {
    let path = format!(
        "{}/tests/data/version-order/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn replay(scheme: Scheme, name: &str) {
    let rows = table(name);
    let mut wrong = Vec::new();
    for (a, want, b) in &rows {
        let want = match want {
            serde_json::Value::Number(n) => n.as_i64().map(i64::signum),
            serde_json::Value::String(op) => match op.as_str() {
                "<" => Some(-1),
                "=" => Some(0),
                ">" => Some(1),
                _ => None,
            },
            _ => None,
        };
        let got = compare(scheme, a, b).map(|o| match o {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        });
        if got != want {
            wrong.push(format!("{a} vs {b}: the tool says {want:?}, Berth {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} pairs of {name} disagree:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

#[test]
fn dpkg_order_matches_dpkg() {
    replay(Scheme::Dpkg, "deb_oracle.json");
}

#[test]
fn rpm_order_matches_rpm() {
    replay(Scheme::Rpm, "rpm_oracle.json");
}

#[test]
fn pep440_order_matches_packaging() {
    replay(Scheme::Pep440, "pep440_oracle.json");
}

#[test]
fn maven_order_matches_maven() {
    replay(Scheme::Maven, "maven_oracle.json");
}

#[test]
fn apk_order_matches_apk_tools() {
    replay(Scheme::Apk, "apk_cases.json");
}
