//! Response headers a registry client reads: `Link` (pagination) and `Retry-After`.

use std::time::{Duration, SystemTime};

/// The target of the `rel="next"` link among `Link` header values (RFC 8288), unresolved.
pub(crate) fn next_link<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    values.into_iter().find_map(next_in)
}

fn next_in(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let open = rest.find('<')?;
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        rest = &rest[close + 1..];
        // The parameters run to the next comma outside a quoted string.
        let mut end = rest.len();
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..end];
        rest = &rest[end..];
        let is_next = params.split(';').any(|p| {
            let Some((name, val)) = p.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && val
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim().to_string());
        }
    }
}

/// A `Retry-After` value (delta-seconds or an HTTP date) as a wait from `now`; a date in the
/// past is no wait.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than any sane wait is as good as "too long": cap instead of failing to parse.
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX / 4)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_next_is_found_among_links_relative_or_absolute() {
        assert_eq!(
            next_link(["</v2/a/tags/list?last=t9&n=10>; rel=\"next\""]).as_deref(),
            Some("/v2/a/tags/list?last=t9&n=10")
        );
        assert_eq!(
            next_link([
                "<https://r.example/v2/_catalog?last=a,b&n=2>; rel=\"prev\", <https://r.example/v2/_catalog?last=c&n=2>; title=\"x, y\"; rel=\"next last\""
            ])
            .as_deref(),
            Some("https://r.example/v2/_catalog?last=c&n=2")
        );
        assert_eq!(
            next_link(["<x>; rel=prev", "<y>; REL=next"]).as_deref(),
            Some("y")
        );
        assert_eq!(next_link(["<x>; rel=\"prev\""]), None);
        assert_eq!(next_link(["garbage"]), None);
        assert_eq!(next_link(["<unclosed; rel=next"]), None);
        assert_eq!(next_link(std::iter::empty()), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert!(
            retry_after("99999999999999999999999", now).is_some_and(|d| d.as_secs() > 1e9 as u64)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
        assert_eq!(retry_after("", now), None);
    }
}
