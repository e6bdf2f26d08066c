//! IKEv2 messages (RFC 7296) with fragmentation (RFC 7383) and digital signature
//! authentication (RFC 7427): the header view, the payload chain and every payload body.
//!
//! A message is a [`Packet`] view of the 28-byte header (section 3.1) and a [`Repr`] whose
//! [`Payloads`] chain holds typed [`Payload`]s (sections 3.2 to 3.16). The encrypted
//! payloads SK and SKF stay opaque here: the engine decrypts their data and parses the inner
//! chain with [`Payloads::parse`], starting from their `first_inner` type.
//!
//! Parsing allocates nothing and checks every length: payload, proposal, transform,
//! attribute and selector lengths against the bytes present, counts against the elements
//! found, address lengths against the selector type. Unknown values of every registry are
//! kept, unknown non-critical payloads are kept as bytes, and a parse → emit round trip is
//! byte for byte, apart from RESERVED fields, which are ignored on receipt and sent as zero
//! (RFC 7296 section 3.2).

mod auth;
mod cert;
mod cursor;
mod delete;
mod encrypted;
mod header;
mod id;
mod ke;
mod nonce;
mod notify;
mod payload;
mod sa;
mod transform;
mod ts;
mod vendor_id;

pub use auth::{AuthMethod, Authentication, DigitalSignature};
pub use cert::{CertEncoding, Certificate};
pub use delete::Delete;
pub use encrypted::{Encrypted, EncryptedFragment};
pub use header::{ExchangeType, Flags, HEADER_LEN, MAJOR_VERSION, Packet};
pub use id::{IdType, Identification};
pub use ke::{DhGroup, KeyExchange};
pub use nonce::Nonce;
pub use notify::{Notification, NotifyType, Redirect};
pub use payload::{PAYLOAD_HEADER_LEN, Payload, PayloadBody, PayloadType, Payloads, PayloadsIter};
pub use sa::{Proposal, ProtocolId};
pub use transform::{
    Attribute, EncrId, EsnId, IntegId, PrfId, Transform, TransformId, TransformType,
};
pub use ts::{TrafficSelector, TsAddresses, TsType};
pub use vendor_id::VendorId;

use crate::{Error, Result};
use header::field;

/// Serializes an IKE SPI as 16 lower-case hex digits: JSON numbers lose precision above
/// 2^53, and tools show SPIs in hex.
fn spi_hex<S: serde::Serializer>(spi: &u64, s: S) -> core::result::Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{spi:016x}"))
}

/// An IKEv2 message: the header fields of RFC 7296 section 3.1 and the payload chain.
/// Next Payload and Length are computed when emitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Repr<'a> {
    /// The IKE SA initiator's SPI (serialized as 16 hex digits, like tshark's `isakmp.ispi`).
    #[serde(serialize_with = "spi_hex")]
    pub initiator_spi: u64,
    /// The IKE SA responder's SPI (zero in the first IKE_SA_INIT request).
    #[serde(serialize_with = "spi_hex")]
    pub responder_spi: u64,
    /// The minor version, 0 for RFC 7296; kept as received.
    pub minor_version: u8,
    /// The exchange type.
    pub exchange_type: ExchangeType,
    /// The flags (I, V, R).
    pub flags: Flags,
    /// The message ID.
    pub message_id: u32,
    /// The payloads, in order.
    pub payloads: Payloads<'a>,
}

impl<'a> Repr<'a> {
    /// Parses a checked message and validates its whole payload chain.
    ///
    /// # Errors
    /// Any error of [`Payloads::parse`].
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self> {
        let bytes: &'a [u8] = packet.clone().into_inner();
        let length = packet.length() as usize;
        let payloads = bytes.get(HEADER_LEN..length).ok_or(Error::Truncated)?;
        Ok(Repr {
            initiator_spi: packet.initiator_spi(),
            responder_spi: packet.responder_spi(),
            minor_version: packet.minor_version(),
            exchange_type: packet.exchange_type(),
            flags: packet.flags(),
            message_id: packet.message_id(),
            payloads: Payloads::parse(packet.next_payload(), payloads)?,
        })
    }

    /// The length of the message this representation emits.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payloads.wire_len()
    }

    /// Writes the message at the start of `buf` and returns its length.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buf` is shorter than [`Repr::buffer_len`];
    /// [`Error::Malformed`] when SK or SKF is not the last payload;
    /// [`Error::Unrepresentable`] when a value does not fit its field (minor version above
    /// 15, a payload longer than 65535 bytes, an SPI size other than 0, 4 or 8, ...).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let length = u32::try_from(len).map_err(|_| Error::Unrepresentable)?;
        if self.minor_version > 0x0f {
            return Err(Error::Unrepresentable);
        }
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let (header, payloads) = buf.split_at_mut(HEADER_LEN);
        header[field::INITIATOR_SPI].copy_from_slice(&self.initiator_spi.to_be_bytes());
        header[field::RESPONDER_SPI].copy_from_slice(&self.responder_spi.to_be_bytes());
        header[field::NEXT_PAYLOAD] = self.payloads.first_type().into();
        header[field::VERSION] = (MAJOR_VERSION << 4) | self.minor_version;
        header[field::EXCHANGE_TYPE] = self.exchange_type.into();
        header[field::FLAGS] = self.flags.0;
        header[field::MESSAGE_ID].copy_from_slice(&self.message_id.to_be_bytes());
        header[field::LENGTH].copy_from_slice(&length.to_be_bytes());
        self.payloads.emit(payloads)?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests;
