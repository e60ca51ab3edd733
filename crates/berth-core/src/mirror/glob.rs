//! Tag globs with the semantics of Python's `fnmatch.fnmatchcase`, which Quay applies to a
//! mirror's `tag_glob_csv`: `*` any run, `?` one character, `[abc]`, `[a-z]`, `[!abc]`
//! (negated); a `[` without its `]` is literal; case-sensitive; the whole tag must match.

/// Whether `name` matches `pattern`.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point for the last `*` (linear in practice, no
    // recursion to blow up on patterns like `*a*a*a*`).
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(&p, pi, n[ni]) {
                        if matched {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The character class starting at `p[start] == '['`: whether `c` is in it and the index after
/// its `]`; `None` when the class is not closed (the `[` is then literal).
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = p.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let first = i;
    let mut found = false;
    while i < p.len() {
        // A `]` right after `[` or `[!` is a member, not the end.
        if p[i] == ']' && i > first {
            return Some((found != negate, i + 1));
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    None
}

/// The tags of `tags` that any of `globs` matches, sorted and without duplicates.
pub fn select_tags(tags: &[String], globs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = tags
        .iter()
        .filter(|t| globs.iter().any(|g| fnmatch(g.trim(), t)))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_as_python_fnmatchcase() {
        // (pattern, name, fnmatch.fnmatchcase's answer)
        for (p, n, want) in [
            ("latest", "latest", true),
            ("latest", "Latest", false),
            ("v1.*", "v1.2.3", true),
            ("v1.*", "v10", false),
            ("*", "", true),
            ("?", "", false),
            ("v?", "v1", true),
            ("v?", "v12", false),
            ("3.1[0-9]", "3.15", true),
            ("3.1[0-9]", "3.1a", false),
            ("3.1[!0-9]", "3.1a", true),
            ("3.1[!0-9]", "3.15", false),
            ("[]]x", "]x", true),
            ("[!]]x", "ax", true),
            ("[!]]x", "]x", false),
            ("a[b", "a[b", true),
            ("a[b", "ab", false),
            ("[a-]", "-", true),
            ("*-alpine", "3.19-alpine", true),
            ("*-alpine", "3.19-alpine3", false),
            (
                "*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("**", "x", true),
            ("[^a]", "^", true),
            ("[^a]", "b", false),
        ] {
            assert_eq!(fnmatch(p, n), want, "fnmatch({p:?}, {n:?})");
        }
    }

    #[test]
    fn selection_is_a_sorted_union() {
        let tags: Vec<String> = ["v2", "latest", "v1", "edge", "v1"]
            .into_iter()
            .map(String::from)
            .collect();
        let globs = vec!["v*".to_string(), "latest".to_string(), "v1".to_string()];
        assert_eq!(select_tags(&tags, &globs), ["latest", "v1", "v2"]);
        assert!(select_tags(&tags, &["nomatch".to_string()]).is_empty());
    }
}
