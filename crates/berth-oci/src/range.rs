//! The two range grammars of the registry API: the `Range: bytes=...` request header on blob GETs,
//! and the `Content-Range: start-end` header on upload PATCHes.

/// A satisfiable byte range `[start, end]` (inclusive) within a blob of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No usable Range header: serve the whole blob (RFC 9110 lets servers ignore malformed ranges).
    Full,
    Partial(ByteRange),
    /// Outside the blob, or a last position before the first: 416.
    Unsatisfiable,
}

/// Parses a `Range` header against a blob of `total` bytes. Only single ranges are served;
/// a multi-range request is answered with the whole blob.
pub fn parse_range(header: &str, total: u64) -> RangeOutcome {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Full;
    };
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if a.is_empty() {
        // Suffix range: the last n bytes.
        let Some(n) = num(b) else {
            return RangeOutcome::Full;
        };
        if n == 0 || total == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        let n = n.min(total);
        return RangeOutcome::Partial(ByteRange {
            start: total - n,
            end: total - 1,
        });
    }
    let Some(start) = num(a) else {
        return RangeOutcome::Full;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match num(b) {
            Some(e) => e,
            None => return RangeOutcome::Full,
        }
    };
    // RFC 9110 §14.1.1: a last position before the first makes the range invalid, and §14.2 says
    // an invalid range SHOULD be answered with 416 (not silently with the whole blob).
    if end < start {
        return RangeOutcome::Unsatisfiable;
    }
    if start >= total {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial(ByteRange {
        start,
        end: end.min(total - 1),
    })
}

/// Parses an upload PATCH `Content-Range: <start>-<end>` (inclusive). Docker clients send it
/// without a unit; a `bytes ` prefix and a `/total` suffix are tolerated.
pub fn parse_content_range(header: &str) -> Option<ByteRange> {
    let s = header.trim();
    let s = s
        .strip_prefix("bytes")
        .map(|r| r.trim_start_matches([' ', '=']))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = b.trim().parse().ok()?;
    (end >= start).then_some(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges() {
        use RangeOutcome::*;
        assert_eq!(
            parse_range("bytes=0-9", 100),
            Partial(ByteRange { start: 0, end: 9 })
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            Partial(ByteRange { start: 90, end: 99 })
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Partial(ByteRange { start: 90, end: 99 })
        );
        assert_eq!(
            parse_range("bytes=50-500", 100),
            Partial(ByteRange { start: 50, end: 99 })
        );
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=500-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("items=0-1", 100), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
        assert_eq!(
            parse_content_range("0-99"),
            Some(ByteRange { start: 0, end: 99 })
        );
        assert_eq!(
            parse_content_range("bytes 10-19/*"),
            Some(ByteRange { start: 10, end: 19 })
        );
        assert_eq!(parse_content_range("9-1"), None);
        assert_eq!(parse_content_range("x"), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,64}", total in any::<u64>()) {
            let _ = parse_range(&s, total);
            let _ = parse_content_range(&s);
        }
        #[test]
        fn partial_is_within_blob(start in 0u64..1000, len in 0u64..1000, total in 0u64..2000) {
            let h = format!("bytes={}-{}", start, start + len);
            if let RangeOutcome::Partial(r) = parse_range(&h, total) {
                prop_assert!(r.start <= r.end && r.end < total);
                prop_assert_eq!(r.start, start);
            }
        }
        #[test]
        fn content_range_round_trips(start in any::<u32>(), len in any::<u32>()) {
            let (s, e) = (start as u64, start as u64 + len as u64);
            prop_assert_eq!(parse_content_range(&format!("{s}-{e}")), Some(ByteRange { start: s, end: e }));
        }
    }
}
