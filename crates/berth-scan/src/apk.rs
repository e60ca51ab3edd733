//! Alpine's version order, as apk-tools defines it (no maintained crate has it). A version is
//! a run of numbers separated by dots, an optional letter, any of the suffixes `_alpha`,
//! `_beta`, `_pre`, `_rc` (before the release) and `_cvs`, `_svn`, `_git`, `_hg`, `_p` (after
//! it), each with an optional number, and an optional `-rN` revision.

use std::cmp::Ordering;

/// The kinds of token, in the order apk ranks them when one version ends where the other goes
/// on (a later kind makes the version that has it smaller, except a post-release suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Where the text stops being a version (apk compares what came before).
    Invalid,
    /// A number after a dot (leading zeros compare as a fraction).
    DotNumber,
    Number,
    Letter,
    Suffix,
    SuffixNumber,
    Revision,
    End,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    value: i64,
}

const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

/// Tokenises a version: its tokens up to the end, or up to an `Invalid` token where it stops
/// being one; `None` if it does not even begin as a version.
fn tokens(s: &str) -> Option<Vec<Token>> {
    let t = lex(s);
    (t.first().map(|t| t.kind) != Some(Kind::Invalid)).then_some(t)
}

fn lex(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    match lex_into(s, &mut out) {
        Some(()) => out.push(Token {
            kind: Kind::End,
            value: 0,
        }),
        None => out.push(Token {
            kind: Kind::Invalid,
            value: 0,
        }),
    }
    out
}

/// Pushes `s`'s tokens; `None` where it stops being a version.
fn lex_into(s: &str, out: &mut Vec<Token>) -> Option<()> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut kind = Kind::Number;
    let number = |i: &mut usize| -> Option<i64> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        s[start..*i].parse().ok()
    };
    loop {
        let value = match kind {
            Kind::DotNumber if b.get(i) == Some(&b'0') => {
                // Leading zeros: the more there are, the smaller (1.01 < 1.1).
                let start = i;
                while i < b.len() && b[i] == b'0' {
                    i += 1;
                }
                let zeros = (i - start) as i64;
                if i < b.len() && b[i].is_ascii_digit() {
                    // The digits after the zeros are the next token's, of the same place.
                    out.push(Token {
                        kind: Kind::Number,
                        value: -zeros,
                    });
                    kind = Kind::Number;
                    continue;
                }
                -zeros
            }
            Kind::DotNumber | Kind::Number | Kind::SuffixNumber | Kind::Revision => number(&mut i)?,
            Kind::Letter => {
                let c = *b.get(i)?;
                i += 1;
                i64::from(c)
            }
            Kind::Suffix => {
                let rest = &s[i..];
                if let Some(n) = PRE.iter().position(|p| rest.starts_with(p)) {
                    i += PRE[n].len();
                    n as i64 - PRE.len() as i64
                } else if let Some(n) = POST.iter().position(|p| rest.starts_with(p)) {
                    i += POST[n].len();
                    n as i64
                } else {
                    return None;
                }
            }
            Kind::End | Kind::Invalid => break,
        };
        out.push(Token { kind, value });
        // What may follow this token.
        let next = match b.get(i) {
            None => Kind::End,
            Some(c) if c.is_ascii_lowercase() && matches!(kind, Kind::Number | Kind::DotNumber) => {
                Kind::Letter
            }
            Some(c) if c.is_ascii_digit() && kind == Kind::Suffix => Kind::SuffixNumber,
            Some(b'.') if matches!(kind, Kind::Number | Kind::DotNumber) => {
                i += 1;
                Kind::DotNumber
            }
            Some(b'_') if kind != Kind::Revision => {
                i += 1;
                Kind::Suffix
            }
            Some(b'-') if b.get(i + 1) == Some(&b'r') && kind != Kind::Revision => {
                i += 2;
                Kind::Revision
            }
            _ => return None,
        };
        kind = next;
    }
    Some(())
}

/// `a` against `b` in apk's order; `None` if either is not an apk version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (ta, tb) = (tokens(a)?, tokens(b)?);
    for (x, y) in ta.iter().zip(tb.iter()) {
        let (xk, yk) = (norm(x.kind), norm(y.kind));
        if xk == yk {
            match x.value.cmp(&y.value) {
                Ordering::Equal if matches!(x.kind, Kind::End | Kind::Invalid) => {
                    return Some(Ordering::Equal);
                }
                Ordering::Equal => continue,
                o => return Some(o),
            }
        }
        // Different kinds here: one version has more. A pre-release suffix makes its version
        // smaller; otherwise the version that goes on is the greater.
        if x.kind == Kind::Suffix && x.value < 0 {
            return Some(Ordering::Less);
        }
        if y.kind == Kind::Suffix && y.value < 0 {
            return Some(Ordering::Greater);
        }
        return Some(yk.cmp(&xk));
    }
    Some(Ordering::Equal)
}

/// Numbers after a dot and after nothing compare alike.
fn norm(k: Kind) -> Kind {
    if k == Kind::DotNumber {
        Kind::Number
    } else {
        k
    }
}
