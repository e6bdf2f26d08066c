//! The Vendor ID payload (RFC 7296 section 3.12).

use super::payload::Body;
use crate::Result;

/// The body of a Vendor ID payload (RFC 7296 section 3.12): an opaque constant, usually a
/// hash, naming an implementation or a private extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct VendorId<'a>(#[serde(serialize_with = "crate::hex::serialize")] pub &'a [u8]);

impl<'a> Body<'a> for VendorId<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        Ok(VendorId(body))
    }

    fn body_len(&self) -> usize {
        self.0.len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        buf.copy_from_slice(self.0);
        Ok(())
    }
}
