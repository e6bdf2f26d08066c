//! Diffie-Hellman (RFC 7296 section 1.2, transform type 4) over ring's `agreement`: Curve25519
//! (group 31, RFC 8031) and the NIST curves P-256 and P-384 (groups 19 and 20, RFC 5903).
//!
//! RFC 5903 section 7: the Key Exchange data of an ECP group is `x || y`, each coordinate
//! padded to the field size, without the 0x04 prefix of the SEC1 uncompressed form that ring
//! speaks, and the shared secret is the x coordinate alone (which ring returns). RFC 8031
//! section 2: the Curve25519 value is the 32-byte u coordinate, and an all-zero shared
//! secret must be refused (ring refuses it).

use dmvpn_wire::ikev2::DhGroup;
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};

use super::random::Random;
use super::{CryptoError, Secret};

/// A Diffie-Hellman group this engine implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Curve25519 (group 31, RFC 8031).
    X25519,
    /// 256-bit random ECP group (group 19, RFC 5903).
    Ecp256,
    /// 384-bit random ECP group (group 20, RFC 5903).
    Ecp384,
}

impl Group {
    /// Every group, in default preference order.
    pub const ALL: [Group; 3] = [Group::X25519, Group::Ecp256, Group::Ecp384];

    /// The transform ID (IANA "Transform Type 4").
    pub const fn id(self) -> DhGroup {
        match self {
            Group::X25519 => DhGroup::Curve25519,
            Group::Ecp256 => DhGroup::Ecp256,
            Group::Ecp384 => DhGroup::Ecp384,
        }
    }

    /// The group of a transform ID, if implemented.
    pub fn from_id(id: DhGroup) -> Option<Self> {
        Group::ALL.into_iter().find(|g| g.id() == id)
    }

    /// The strongSwan keyword (`x25519`, `ecp256`, `ecp384`).
    pub const fn keyword(self) -> &'static str {
        match self {
            Group::X25519 => "x25519",
            Group::Ecp256 => "ecp256",
            Group::Ecp384 => "ecp384",
        }
    }

    /// Parses a strongSwan keyword (`curve25519` is strongSwan's synonym of `x25519`).
    pub fn from_keyword(s: &str) -> Option<Self> {
        match s {
            "x25519" | "curve25519" => Some(Group::X25519),
            "ecp256" => Some(Group::Ecp256),
            "ecp384" => Some(Group::Ecp384),
            _ => None,
        }
    }

    fn ring(self) -> &'static agreement::Algorithm {
        match self {
            Group::X25519 => &agreement::X25519,
            Group::Ecp256 => &agreement::ECDH_P256,
            Group::Ecp384 => &agreement::ECDH_P384,
        }
    }

    /// Bytes of the Key Exchange data (RFC 8031 section 2, RFC 5903 section 7).
    pub const fn public_len(self) -> usize {
        match self {
            Group::X25519 => 32,
            Group::Ecp256 => 64,
            Group::Ecp384 => 96,
        }
    }

    /// Bytes of a private scalar.
    #[cfg(feature = "deterministic")]
    const fn scalar_len(self) -> usize {
        match self {
            Group::X25519 | Group::Ecp256 => 32,
            Group::Ecp384 => 48,
        }
    }
}

/// An ephemeral key pair: ring's private key, used once, and the Key Exchange data to send.
#[derive(Debug)]
pub struct KeyPair {
    group: Group,
    private: EphemeralPrivateKey,
    public: Vec<u8>,
}

impl KeyPair {
    /// Generates a key pair of `group` (see [`crate::crypto::random`] for where the private
    /// key comes from).
    ///
    /// # Errors
    /// [`CryptoError::KeyGeneration`] if ring fails.
    pub fn generate(group: Group, rng: &mut dyn Random) -> Result<Self, CryptoError> {
        let private = private_key(group, rng)?;
        let public = private
            .compute_public_key()
            .map_err(|_| CryptoError::KeyGeneration)?;
        let bytes = public.as_ref();
        // ring's ECP public keys are SEC1 uncompressed: 0x04 || x || y.
        let public = match group {
            Group::X25519 => bytes.to_vec(),
            Group::Ecp256 | Group::Ecp384 => bytes.get(1..).unwrap_or_default().to_vec(),
        };
        if public.len() != group.public_len() {
            return Err(CryptoError::KeyGeneration);
        }
        Ok(KeyPair {
            group,
            private,
            public,
        })
    }

    /// The group.
    pub const fn group(&self) -> Group {
        self.group
    }

    /// The Key Exchange data to send.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// Computes the shared secret `g^ir` with the peer's Key Exchange data, consuming the
    /// private key (RFC 7296 section 2.14).
    ///
    /// # Errors
    /// [`CryptoError::BadPublicValue`] for a value of the wrong length, not on the curve, or
    /// giving the all-zero Curve25519 secret.
    pub fn agree(self, peer: &[u8]) -> Result<Secret, CryptoError> {
        if peer.len() != self.group.public_len() {
            return Err(CryptoError::BadPublicValue);
        }
        let mut sec1 = [0u8; 97];
        let peer = match self.group {
            Group::X25519 => peer,
            Group::Ecp256 | Group::Ecp384 => {
                sec1[0] = 0x04;
                sec1[1..=peer.len()].copy_from_slice(peer);
                &sec1[..=peer.len()]
            }
        };
        agreement::agree_ephemeral(
            self.private,
            &UnparsedPublicKey::new(self.group.ring(), peer),
            |secret| Secret::new(secret.to_vec()),
        )
        .map_err(|_| CryptoError::BadPublicValue)
    }
}

#[cfg(not(feature = "deterministic"))]
fn private_key(group: Group, _rng: &mut dyn Random) -> Result<EphemeralPrivateKey, CryptoError> {
    EphemeralPrivateKey::generate(group.ring(), &ring::rand::SystemRandom::new())
        .map_err(|_| CryptoError::KeyGeneration)
}

#[cfg(feature = "deterministic")]
fn private_key(group: Group, rng: &mut dyn Random) -> Result<EphemeralPrivateKey, CryptoError> {
    if !rng.deterministic_dh() {
        return EphemeralPrivateKey::generate(group.ring(), &ring::rand::SystemRandom::new())
            .map_err(|_| CryptoError::KeyGeneration);
    }
    // A seed outside the ECP scalar range makes ring give up; draw another.
    for _ in 0..16 {
        let mut seed = [0u8; 48];
        let seed = &mut seed[..group.scalar_len()];
        rng.fill(seed);
        if let Ok(key) = from_seed(group, seed) {
            return Ok(key);
        }
    }
    Err(CryptoError::KeyGeneration)
}

/// ring's key from a given scalar, through its deprecated test RNG (deterministic builds
/// only; see [`crate::crypto::random`]).
#[cfg(feature = "deterministic")]
#[allow(deprecated)]
pub(crate) fn from_seed(group: Group, seed: &[u8]) -> Result<EphemeralPrivateKey, CryptoError> {
    let fixed = ring::test::rand::FixedSliceRandom { bytes: seed };
    EphemeralPrivateKey::generate(group.ring(), &fixed).map_err(|_| CryptoError::KeyGeneration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random::SeededRandom;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 7748 section 6.1: Alice's and Bob's X25519 keys and their shared secret, with the
    /// scalars injected through ring's fixed-slice RNG.
    #[test]
    fn rfc7748_section_6_1() {
        let a = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let b = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let alice = from_seed(Group::X25519, &a).unwrap();
        let bob = from_seed(Group::X25519, &b).unwrap();
        assert_eq!(
            alice.compute_public_key().unwrap().as_ref(),
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let bob_public = bob.compute_public_key().unwrap();
        assert_eq!(
            bob_public.as_ref(),
            hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
        let pair = KeyPair {
            group: Group::X25519,
            private: alice,
            public: Vec::new(),
        };
        assert_eq!(
            pair.agree(bob_public.as_ref()).unwrap().expose(),
            hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }

    /// RFC 7748 section 5.2, first X25519 vector: an arbitrary scalar times an arbitrary u.
    #[test]
    fn rfc7748_section_5_2() {
        let k = hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
        let u = hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
        let pair = KeyPair {
            group: Group::X25519,
            private: from_seed(Group::X25519, &k).unwrap(),
            public: Vec::new(),
        };
        assert_eq!(
            pair.agree(&u).unwrap().expose(),
            hex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
        );
    }

    /// Every group agrees with itself, public values have the RFC 5903 / 8031 lengths, and bad
    /// values are refused.
    #[test]
    fn round_trips_and_refusals() {
        let mut rng = SeededRandom(7);
        for g in Group::ALL {
            let a = KeyPair::generate(g, &mut rng).unwrap();
            let b = KeyPair::generate(g, &mut rng).unwrap();
            assert_eq!(a.public().len(), g.public_len());
            let (pa, pb) = (a.public().to_vec(), b.public().to_vec());
            let s1 = a.agree(&pb).unwrap();
            let s2 = b.agree(&pa).unwrap();
            assert_eq!(s1, s2);
            assert_eq!(s1.len(), if g == Group::Ecp384 { 48 } else { 32 });
            let c = KeyPair::generate(g, &mut rng).unwrap();
            assert_eq!(c.agree(&pa[1..]).unwrap_err(), CryptoError::BadPublicValue);
        }
        // Not a point on P-256; and the zero u coordinate (all-zero secret) for X25519.
        let c = KeyPair::generate(Group::Ecp256, &mut rng).unwrap();
        assert!(c.agree(&[1; 64]).is_err());
        let c = KeyPair::generate(Group::X25519, &mut rng).unwrap();
        assert!(c.agree(&[0; 32]).is_err());
        // Same seed, same public value.
        let a = KeyPair::generate(Group::Ecp384, &mut SeededRandom(1)).unwrap();
        let b = KeyPair::generate(Group::Ecp384, &mut SeededRandom(1)).unwrap();
        assert_eq!(a.public(), b.public());
    }
}
