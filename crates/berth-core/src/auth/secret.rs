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
/// default, with less working memory per login.
const M_COST_KIB: u32 = 7 * 1024;
const T_COST: u32 = 5;
const P_COST: u32 = 1;
/// Stored hashes with more memory than this are refused rather than computed.
const MAX_M_COST_KIB: u32 = 256 * 1024;

/// The working memory of one hash, reserved at more than glibc's largest dynamic mmap threshold
/// (32 MiB on 64-bit): such an allocation is always its own mapping and goes back to the system
/// when freed. Smaller ones end up in malloc arenas that keep them, and the process's memory grew
/// by ~7 MiB with each login. Pages beyond the ones hashing touches are never made resident.
fn hash_memory(m_cost_kib: u32) -> Vec<argon2::Block> {
    const ALWAYS_MAPPED: usize = 33 * 1024; // blocks of 1 KiB
    let n = usize::try_from(m_cost_kib).unwrap_or(0);
    let mut v = Vec::with_capacity(n.max(ALWAYS_MAPPED));
    v.resize(n, argon2::Block::new());
    v
}

fn argon2id(m: u32, t: u32, p: u32) -> Option<argon2::Argon2<'static>> {
    let params = argon2::Params::new(m, t, p, Some(32)).ok()?;
    Some(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// The PHC string of a new hash: `$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>`.
fn hash_blocking(password: &[u8]) -> Option<String> {
    use base64::Engine;
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).ok()?;
    let mut out = [0u8; 32];
    argon2id(M_COST_KIB, T_COST, P_COST)?
        .hash_password_into_with_memory(password, &salt, &mut out, hash_memory(M_COST_KIB))
        .ok()?;
    Some(format!(
        "$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}${}${}",
        B64.encode(salt),
        B64.encode(out)
    ))
}

/// Checks `password` against a PHC argon2id string (any m/t/p it names, up to a limit).
fn verify_blocking(password: &[u8], phc: &str) -> bool {
    use base64::Engine;
    let parts: Vec<&str> = phc.split('$').collect();
    let ["", "argon2id", "v=19", params, salt, hash] = parts.as_slice() else {
        return false;
    };
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => m = v.parse::<u32>().ok(),
            Some(("t", v)) => t = v.parse::<u32>().ok(),
            Some(("p", v)) => p = v.parse::<u32>().ok(),
            _ => return false,
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    if m > MAX_M_COST_KIB || expected.is_empty() || expected.len() > 64 {
        return false;
    }
    let Some(params) = argon2::Params::new(m, t, p, Some(expected.len())).ok() else {
        return false;
    };
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = vec![0u8; expected.len()];
    if a.hash_password_into_with_memory(password, &salt, &mut out, hash_memory(m))
        .is_err()
    {
        return false;
    }
    aws_lc_rs::constant_time::verify_slices_are_equal(&out, &expected).is_ok()
}

/// Threads that compute password hashes: two, so that a flood of logins uses two cores at most.
const HASHING_THREADS: usize = 2;

type HashJob = Box<dyn FnOnce() + Send>;

fn hashing_pool() -> Option<&'static std::sync::mpsc::Sender<HashJob>> {
    static POOL: std::sync::OnceLock<Option<std::sync::mpsc::Sender<HashJob>>> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..HASHING_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("berth-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if spawned.is_err() {
                return None;
            }
        }
        Some(tx)
    })
    .as_ref()
}

/// Runs `f` on a hashing thread. At most 64 requests wait or run at once, so a flood of logins
/// queues here, bounded.
async fn on_hashing_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    static WAITING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);
    let _permit = WAITING.acquire().await.ok()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    hashing_pool()?
        .send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .ok()?;
    rx.await.ok()
}

/// Hashes a password with argon2id (on a hashing thread: it costs tens of milliseconds).
pub async fn hash_password(password: &str) -> String {
    let pw = password.as_bytes().to_vec();
    on_hashing_thread(move || hash_blocking(&pw))
        .await
        .flatten()
        .unwrap_or_default()
}

/// Checks a password against a PHC hash; `None` hash still spends the time (no user enumeration).
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let pw = password.as_bytes().to_vec();
    let (hash, real) = match hash {
        Some(h) => (h.to_string(), true),
        None => (
            match DUMMY.get() {
                Some(d) => d.clone(),
                None => {
                    let d = hash_password("berth-dummy-password").await;
                    DUMMY.get_or_init(|| d).clone()
                }
            },
            false,
        ),
    };
    on_hashing_thread(move || verify_blocking(&pw, &hash))
        .await
        .unwrap_or(false)
        && real
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
        // Hashes written by the argon2 crate's own PHC encoder (19 MiB, 2 passes) verify too.
        let h = {
            use argon2::PasswordHasher;
            argon2::Argon2::default()
                .hash_password_with_salt(b"pw", b"0123456789abcdef")
                .map(|h| h.to_string())
                .unwrap_or_default()
        };
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("pw", Some(&h)).await);
        assert!(!verify_password("px", Some(&h)).await);
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
