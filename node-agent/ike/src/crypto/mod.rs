//! The cryptography of IKEv2 (RFC 7296 sections 2.13 to 2.18, 2.23, 3.14), all through ring:
//! the PRFs and prf+, SKEYSEED and the SA keys, Diffie-Hellman, the SK payload's AEAD, and
//! the injected randomness.

pub mod dh;
pub mod keys;
pub mod prf;
pub mod random;
pub mod sk;

use core::fmt;

/// Secret bytes (keys, shared secrets, SKEYSEED): `Debug` prints `<redacted>` and the bytes
/// are overwritten when dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The bytes: for key derivation and the opt-in key log only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes (SK_ai/SK_ar with an AEAD).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort without `unsafe` volatile writes: black_box keeps the stores alive.
        self.0.iter_mut().for_each(|b| *b = 0);
        core::hint::black_box(&self.0);
    }
}

/// A cryptographic operation that failed on peer input (a bad public value, an ICV that
/// does not verify) or in ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The peer's Diffie-Hellman public value is not a valid point of the group.
    #[error("invalid Diffie-Hellman public value")]
    BadPublicValue,
    /// ring could not generate a key.
    #[error("key generation failed")]
    KeyGeneration,
    /// The SK payload did not authenticate (RFC 7296 section 3.14).
    #[error("integrity check failed")]
    Icv,
    /// The SK payload is too short for IV, pad length and ICV, or its pad length is wrong.
    #[error("malformed encrypted payload")]
    Malformed,
}
