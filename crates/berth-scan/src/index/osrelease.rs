//! os-release(5): `KEY=value` lines, values optionally quoted.

use super::OsRelease;

pub(super) fn parse(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        let some = || (!value.is_empty()).then(|| value.clone());
        match key.trim() {
            "ID" => os.id = value.to_ascii_lowercase(),
            "VERSION_ID" => os.version_id = some(),
            "VERSION_CODENAME" => os.version_codename = some(),
            "PRETTY_NAME" => os.pretty_name = some(),
            "ID_LIKE" => {
                os.id_like = value
                    .split_whitespace()
                    .map(|s| s.to_ascii_lowercase())
                    .collect();
            }
            _ => {}
        }
    }
    if os.id.is_empty() {
        os.id = "linux".to_owned();
    }
    os
}

/// A shell-style value: `"…"` with backslash escapes, `'…'` literal, or bare.
fn unquote(v: &str) -> String {
    let mut chars = v.chars();
    match chars.next() {
        Some(q @ ('"' | '\'')) => {
            let mut out = String::new();
            let mut escaped = false;
            for c in chars {
                if escaped {
                    out.push(c);
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    break;
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => v.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian() {
        let os = parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn quotes_escapes_and_defaults() {
        let os = parse("# c\nID_LIKE='rhel fedora'\nPRETTY_NAME=\"a \\\"b\\\"\"\nVERSION_ID=\n");
        assert_eq!(os.id, "linux");
        assert_eq!(os.id_like, ["rhel", "fedora"]);
        assert_eq!(os.pretty_name.as_deref(), Some("a \"b\""));
        assert_eq!(os.version_id, None);
    }
}
