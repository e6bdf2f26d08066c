//! The Encrypted and Authenticated payload SK (RFC 7296 section 3.14) and its fragment SKF
//! (RFC 7383 section 2.5). Both are always the last payload of a message; their Next Payload
//! field names the first payload inside the encrypted data.
//!
//! ```text
//! SK:  ~ Initialization Vector | Encrypted IKE Payloads | Padding | Pad Length ~ ICV ~
//!
//! SKF: |        Fragment Number        |        Total Fragments        |
//!      ~ Initialization Vector | Encrypted content ~ ICV ~
//! ```

use super::PayloadType;
use super::cursor::{Reader, Writer};
use crate::{Error, Result};

/// The body of an SK payload (RFC 7296 section 3.14), left opaque: only the engine knows the
/// IV and ICV lengths of the negotiated cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Encrypted<'a> {
    /// The type of the first payload inside the encrypted data (SK's Next Payload field).
    pub first_inner: PayloadType,
    /// IV, ciphertext (with padding and pad length) and ICV.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub data: &'a [u8],
}

/// The body of an SKF payload (RFC 7383 section 2.5): one fragment of an SK payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EncryptedFragment<'a> {
    /// The first inner payload type in fragment 1, 0 in the others.
    pub first_inner: PayloadType,
    /// This fragment's number, from 1.
    pub fragment_number: u16,
    /// The number of fragments, at least `fragment_number`.
    pub total_fragments: u16,
    /// IV, encrypted content and ICV of this fragment.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub data: &'a [u8],
}

impl<'a> EncryptedFragment<'a> {
    /// Whether 1 <= fragment number <= total fragments, and the Next Payload field is zero
    /// in every fragment but the first (RFC 7383 section 2.5).
    fn numbers_valid(&self) -> bool {
        self.fragment_number >= 1
            && self.fragment_number <= self.total_fragments
            && (self.fragment_number == 1 || self.first_inner == PayloadType::None)
    }

    /// Parses the body of an SKF payload whose Next Payload field is `first_inner`.
    ///
    /// # Errors
    /// [`Error::Truncated`] without the numbers, [`Error::Malformed`] when the fragment
    /// number is 0 or above the total, or a fragment after the first names an inner payload.
    pub(super) fn parse(first_inner: PayloadType, body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let fragment_number = r.u16()?;
        let total_fragments = r.u16()?;
        let skf = EncryptedFragment {
            first_inner,
            fragment_number,
            total_fragments,
            data: r.rest(),
        };
        if !skf.numbers_valid() {
            return Err(Error::Malformed);
        }
        Ok(skf)
    }

    pub(super) fn body_len(&self) -> usize {
        4 + self.data.len()
    }

    pub(super) fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if !self.numbers_valid() {
            return Err(Error::Unrepresentable);
        }
        let mut w = Writer::new(buf);
        w.u16(self.fragment_number);
        w.u16(self.total_fragments);
        w.bytes(self.data);
        Ok(())
    }
}
