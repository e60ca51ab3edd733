//! Secrets: random tokens, their SHA-256 for lookup, passwords hashed with argon2id, and sealing
//! (AES-256-GCM) of the few secrets that must be shown again (robot tokens, signing keys).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

/// A random token of `len` characters from `[A-Za-z0-9]` (~5.95 bits each).
pub fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// Uppercase letters and digits, as Quay's robot tokens.
pub fn random_upper_token(len: usize) -> String {
    random_token(len * 2)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .take(len)
        .collect()
}

/// Hex SHA-256: how tokens are looked up without storing them.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison of two strings.
pub fn equal(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// argon2id with OWASP's 7 MiB / 5 passes / 1 lane setting: as strong as the 19 MiB / 2 passes
/// default, but the process keeps 7 MiB rather than 19 MiB of working memory after a login
/// (the allocator does not give it back).
fn hasher() -> argon2::Argon2<'static> {
    match argon2::Params::new(7 * 1024, 5, 1, None) {
        Ok(p) => argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p),
        Err(_) => argon2::Argon2::default(),
    }
}

/// Password hashes running at once: each holds 7 MiB and a core for tens of milliseconds, so a
/// flood of logins queues here instead of exhausting memory and the blocking thread pool.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// Hashes a password with argon2id (on a blocking thread: it costs tens of milliseconds).
pub async fn hash_password(password: &str) -> String {
    let _permit = hashing_permits().acquire().await;
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || {
        use argon2::PasswordHasher;
        hasher()
            .hash_password(pw.as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default()
}

/// Checks a password against a PHC hash; `None` hash still spends the time (no user enumeration).
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let _permit = hashing_permits().acquire().await;
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let pw = password.to_string();
    let (hash, real) = match hash {
        Some(h) => (h.to_string(), true),
        None => (
            DUMMY
                .get_or_init(|| {
                    use argon2::PasswordHasher;
                    hasher()
                        .hash_password(b"berth-dummy-password")
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone(),
            false,
        ),
    };
    tokio::task::spawn_blocking(move || {
        use argon2::PasswordVerifier;
        let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(&hash) else {
            return false;
        };
        hasher().verify_password(pw.as_bytes(), &parsed).is_ok() && real
    })
    .await
    .unwrap_or(false)
}

/// Seals and opens small secrets with a key derived from the database secret.
#[derive(Clone)]
pub struct Sealer {
    key: std::sync::Arc<LessSafeKey>,
}

impl Sealer {
    pub fn new(secret: &str) -> Sealer {
        let digest = Sha256::digest(secret.as_bytes());
        // A 32-byte key for AES-256 always constructs.
        let unbound = UnboundKey::new(&AES_256_GCM, &digest)
            .unwrap_or_else(|_| unreachable!("AES-256-GCM takes a 32-byte key"));
        Sealer {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
        }
    }

    /// hex(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The system RNG does not fail on supported platforms; a zero nonce would still seal.
        let _ = SystemRandom::new().fill(&mut nonce);
        let mut buf = plain.to_vec();
        if self
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        hex::encode(out)
    }

    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let raw = hex::decode(sealed).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (n, c) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).ok()?;
        let mut buf = c.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut buf).ok()?;
        Some(plain.to_vec())
    }

    pub fn open_string(&self, sealed: &str) -> Option<String> {
        String::from_utf8(self.open(sealed)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_tamper() {
        let s = Sealer::new("k1");
        let sealed = s.seal(b"robot-token");
        assert_eq!(s.open(&sealed).as_deref(), Some(&b"robot-token"[..]));
        assert!(Sealer::new("k2").open(&sealed).is_none());
        let mut t = sealed.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'0' { b'1' } else { b'0' };
        assert!(s.open(&String::from_utf8(t).unwrap_or_default()).is_none());
        assert!(s.open("zz").is_none());
    }

    #[tokio::test]
    async fn passwords() {
        let h = hash_password("pw").await;
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("pw", Some(&h)).await);
        assert!(!verify_password("px", Some(&h)).await);
        assert!(!verify_password("pw", None).await);
        assert!(!verify_password("pw", Some("garbage")).await);
    }

    #[test]
    fn tokens() {
        let t = random_upper_token(64);
        assert_eq!(t.len(), 64);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_ne!(random_token(40), random_token(40));
        assert!(equal("a", "a") && !equal("a", "b"));
    }
}
