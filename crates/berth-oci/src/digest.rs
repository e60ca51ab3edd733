//! Content digests (`algorithm:hex`) and streaming hashers whose state can be saved and resumed,
//! so that a chunked upload can continue on another request, after a restart, or on another instance.

use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest. Only algorithms Berth can verify are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algo: Algorithm,
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest: {0}")]
pub struct DigestError(pub String);

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algo
    }
    pub fn hex(&self) -> &str {
        &self.hex
    }
    /// sha256 of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(bytes);
        h.finish()
    }
    pub fn of(algo: Algorithm, bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(algo);
        h.update(bytes);
        h.finish()
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError(format!("{s:?} has no algorithm prefix")))?;
        let algo = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError(format!("unsupported algorithm {other:?}"))),
        };
        if hex.len() != algo.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError(format!(
                "{} digest must be {} lowercase hex characters",
                algo.as_str(),
                algo.hex_len()
            )));
        }
        Ok(Digest {
            algo,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo.as_str(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A streaming hasher for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algo: Algorithm) -> Hasher {
        match algo {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }
    pub fn finish(self) -> Digest {
        let (algo, bytes) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Hasher::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest {
            algo,
            hex: hex::encode(bytes),
        }
    }
    /// The hasher's internal state, to be stored with an upload session and resumed later.
    pub fn save(&self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.serialize().to_vec(),
            Hasher::Sha512(h) => h.serialize().to_vec(),
        }
    }
    /// Restores a state made by [`Hasher::save`]; `None` if the bytes are not a valid state.
    pub fn restore(algo: Algorithm, state: &[u8]) -> Option<Hasher> {
        match algo {
            Algorithm::Sha256 => {
                let arr = state.try_into().ok()?;
                sha2::Sha256::deserialize(arr).ok().map(Hasher::Sha256)
            }
            Algorithm::Sha512 => {
                let arr = state.try_into().ok()?;
                sha2::Sha512::deserialize(arr).ok().map(Hasher::Sha512)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            Digest::sha256_of(b"{}").to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:00".parse::<Digest>().is_err());
        assert!(
            "sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A"
                .parse::<Digest>()
                .is_err()
        );
    }

    #[test]
    fn saved_state_resumes() {
        for algo in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut a = Hasher::new(algo);
            a.update(b"hello ");
            let saved = a.save();
            let mut b = Hasher::restore(algo, &saved).expect("restore");
            b.update(b"world");
            assert_eq!(b.finish(), Digest::of(algo, b"hello world"));
        }
        assert!(Hasher::restore(Algorithm::Sha256, b"short").is_none());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = s.parse::<Digest>();
        }
        #[test]
        fn valid_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64), sha512 in any::<bool>()) {
            let algo = if sha512 { Algorithm::Sha512 } else { Algorithm::Sha256 };
            let d = Digest::of(algo, &bytes);
            let parsed: Digest = d.to_string().parse().expect("parse");
            prop_assert_eq!(parsed, d);
        }
        #[test]
        fn split_hashing_equals_whole(bytes in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
            let cut = cut.min(bytes.len());
            let mut h = Hasher::new(Algorithm::Sha256);
            h.update(&bytes[..cut]);
            let mut h = Hasher::restore(Algorithm::Sha256, &h.save()).expect("restore");
            h.update(&bytes[cut..]);
            prop_assert_eq!(h.finish(), Digest::sha256_of(&bytes));
        }
    }
}
