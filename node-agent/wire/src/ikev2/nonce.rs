//! The Nonce payload (RFC 7296 section 3.9).

use super::payload::Body;
use crate::Result;

/// The body of a Nonce payload (RFC 7296 section 3.9): random data.
///
/// The RFC bounds the nonce to 16..=256 bytes (and at least half the PRF key size). The
/// codec parses any length so that a round trip keeps what was received; the engine judges
/// the length with [`Nonce::has_valid_length`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Nonce<'a>(#[serde(serialize_with = "crate::hex::serialize")] pub &'a [u8]);

impl Nonce<'_> {
    /// Whether the length is within 16..=256 bytes (RFC 7296 section 3.9).
    pub fn has_valid_length(&self) -> bool {
        (16..=256).contains(&self.0.len())
    }
}

impl<'a> Body<'a> for Nonce<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        Ok(Nonce(body))
    }

    fn body_len(&self) -> usize {
        self.0.len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        buf.copy_from_slice(self.0);
        Ok(())
    }
}
