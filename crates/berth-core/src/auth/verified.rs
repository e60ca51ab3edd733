//! Recently verified passwords, so that a client logging in again with the same credentials does
//! not pay for a full argon2id check each time (32 CI jobs pushing at once each log in; podman
//! and skopeo ask for a token per process).
//!
//! What is kept, per successful password check: a keyed hash (HMAC-SHA256 under a random key
//! that lives only in this process's memory) of the user name and the password, mapped to the
//! account's id, a keyed hash of the account's stored password hash at that moment, and when.
//! Neither the password nor anything computable from it without the key is stored.
//!
//! A hit is only a replacement for the argon2id comparison: the caller has just read the
//! account's row and still applies every other rule (the source's throttling and lock-out, the
//! account being enabled). A hit needs the same account id and the same stored password hash, so
//! a password change (a new hash, with a new salt) or a deletion misses at once — on every
//! instance, since each one compares against the row it read, not against a message from the
//! instance that made the change. A wrong password is a different key, so it always misses and
//! goes through the full check (and the failure counters).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::hmac;

/// At most this many remembered logins; past it, expired entries go, then everything.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    account_id: i64,
    stamp: [u8; 32],
    at_ms: i64,
}

pub(crate) struct VerifiedLogins {
    key: hmac::Key,
    ttl_ms: i64,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl VerifiedLogins {
    /// `ttl_ms` 0 (or less) remembers nothing.
    pub(crate) fn new(ttl_ms: i64) -> VerifiedLogins {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        VerifiedLogins {
            key,
            ttl_ms,
            entries: Mutex::default(),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = hmac::Context::with_key(&self.key);
        for p in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(m.sign().as_ref());
        out
    }

    fn tag(&self, username: &str, password: &str) -> [u8; 32] {
        self.mac(&[
            b"login",
            username.to_ascii_lowercase().as_bytes(),
            password.as_bytes(),
        ])
    }

    fn stamp(&self, password_hash: &str) -> [u8; 32] {
        self.mac(&[b"stored", password_hash.as_bytes()])
    }

    /// Whether `password` was verified for this account, with this stored hash, within the TTL.
    pub(crate) fn hit(
        &self,
        username: &str,
        password: &str,
        account_id: i64,
        password_hash: Option<&str>,
        now_ms: i64,
    ) -> bool {
        let Some(hash) = password_hash else {
            return false;
        };
        if self.ttl_ms <= 0 {
            return false;
        }
        let tag = self.tag(username, password);
        let stamp = self.stamp(hash);
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        entries.get(&tag).is_some_and(|e| {
            e.account_id == account_id
                && aws_lc_rs::constant_time::verify_slices_are_equal(&e.stamp, &stamp).is_ok()
                && now_ms - e.at_ms < self.ttl_ms
                && now_ms >= e.at_ms
        })
    }

    /// Remembers a password that argon2id just accepted for this account and stored hash.
    pub(crate) fn remember(
        &self,
        username: &str,
        password: &str,
        account_id: i64,
        password_hash: &str,
        now_ms: i64,
    ) {
        if self.ttl_ms <= 0 {
            return;
        }
        let tag = self.tag(username, password);
        let stamp = self.stamp(password_hash);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl_ms;
            entries.retain(|_, e| now_ms - e.at_ms < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            tag,
            Entry {
                account_id,
                stamp,
                at_ms: now_ms,
            },
        );
    }

    /// Drops everything remembered for an account (its password changed, it was disabled or
    /// deleted here). Hits re-check the stored hash anyway; this keeps memory free of it.
    pub(crate) fn forget_account(&self, account_id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, e| e.account_id != account_id);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_password_account_and_stored_hash() {
        let v = VerifiedLogins::new(60_000);
        v.remember("alice", "right", 7, "$argon2id$one", 1_000);
        assert!(v.hit("alice", "right", 7, Some("$argon2id$one"), 2_000));
        assert!(v.hit("ALICE", "right", 7, Some("$argon2id$one"), 2_000));
        assert!(!v.hit("alice", "wrong", 7, Some("$argon2id$one"), 2_000));
        assert!(!v.hit("alice", "righ", 7, Some("$argon2id$one"), 2_000));
        assert!(!v.hit("alicer", "ight", 7, Some("$argon2id$one"), 2_000));
        // A new password hash (password changed), another account with that name (deleted and
        // re-created), no password at all: misses.
        assert!(!v.hit("alice", "right", 7, Some("$argon2id$two"), 2_000));
        assert!(!v.hit("alice", "right", 8, Some("$argon2id$one"), 2_000));
        assert!(!v.hit("alice", "right", 7, None, 2_000));
        // Expired, or from the future (clock stepped back).
        assert!(!v.hit("alice", "right", 7, Some("$argon2id$one"), 61_000));
        assert!(!v.hit("alice", "right", 7, Some("$argon2id$one"), 999));
        v.forget_account(7);
        assert!(!v.hit("alice", "right", 7, Some("$argon2id$one"), 2_000));
        assert_eq!(v.len(), 0);
    }

    #[test]
    fn nothing_is_kept_with_a_zero_ttl_and_the_map_stays_bounded() {
        let v = VerifiedLogins::new(0);
        v.remember("alice", "right", 7, "h", 1_000);
        assert!(!v.hit("alice", "right", 7, Some("h"), 1_000));
        assert_eq!(v.len(), 0);
        let v = VerifiedLogins::new(10);
        for i in 0..(MAX_ENTRIES as i64 + 5) {
            v.remember(&format!("u{i}"), "p", i, "h", i);
        }
        assert!(v.len() <= MAX_ENTRIES);
        assert!(v.hit(
            &format!("u{}", MAX_ENTRIES + 4),
            "p",
            MAX_ENTRIES as i64 + 4,
            Some("h"),
            MAX_ENTRIES as i64 + 4
        ));
    }

    #[test]
    fn keys_differ_between_processes() {
        // Two caches (two processes) never share a tag: the key is random per instance.
        let a = VerifiedLogins::new(1);
        let b = VerifiedLogins::new(1);
        assert_ne!(a.tag("alice", "pw"), b.tag("alice", "pw"));
    }
}
