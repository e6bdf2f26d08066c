//! The Delete payload (RFC 7296 section 3.11).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Protocol ID   |   SPI Size    |          Num of SPIs          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~               Security Parameter Index(es) (SPI)              ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::ProtocolId;
use super::cursor::{Reader, Writer};
use super::payload::Body;
use crate::{Error, Result};

/// The body of a Delete payload (RFC 7296 section 3.11): the SAs to delete. Deleting the
/// IKE SA carries protocol IKE, SPI size 0 and no SPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Delete<'a> {
    /// The protocol of the SAs.
    pub protocol_id: ProtocolId,
    /// The length of each SPI: 0 for IKE, 4 for ESP and AH.
    pub spi_size: u8,
    /// The SPIs back to back; Num of SPIs is their count.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub spis: &'a [u8],
}

impl<'a> Delete<'a> {
    /// Iterates over the SPIs.
    pub fn spis(&self) -> core::slice::ChunksExact<'a, u8> {
        // With SPI size 0 the list is empty (checked by parse and emit), so chunks of 1 yield
        // nothing.
        self.spis.chunks_exact(usize::from(self.spi_size).max(1))
    }

    /// The Num of SPIs field.
    fn count(&self) -> Result<u16> {
        let count = match self.spis.len().checked_div(usize::from(self.spi_size)) {
            Some(n) if self.spis.len().is_multiple_of(usize::from(self.spi_size)) => n,
            None if self.spis.is_empty() => 0,
            _ => return Err(Error::Unrepresentable),
        };
        u16::try_from(count).map_err(|_| Error::Unrepresentable)
    }
}

impl<'a> Body<'a> for Delete<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let protocol_id = ProtocolId::from(r.u8()?);
        let spi_size = r.u8()?;
        let count = usize::from(r.u16()?);
        let spis = r.rest();
        // With SPI size 0, a non-zero count could not be kept in a round trip.
        let announced = if spi_size == 0 && count != 0 {
            usize::MAX
        } else {
            count * usize::from(spi_size)
        };
        if spis.len() != announced {
            return Err(Error::BadLength);
        }
        Ok(Delete {
            protocol_id,
            spi_size,
            spis,
        })
    }

    fn body_len(&self) -> usize {
        4 + self.spis.len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let count = self.count()?;
        let mut w = Writer::new(buf);
        w.u8(self.protocol_id.into());
        w.u8(self.spi_size);
        w.u16(count);
        w.bytes(self.spis);
        Ok(())
    }
}
