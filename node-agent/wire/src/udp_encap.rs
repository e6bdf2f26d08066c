//! UDP encapsulation of IKE and ESP on port 4500 (RFC 3948 section 2, RFC 7296 section 2.23):
//! one port carries NAT keepalives, IKE messages behind a four-byte non-ESP marker, and ESP.

use crate::{Error, Result};

/// UDP port of IKE before NAT traversal floats it (RFC 7296 section 2).
pub const IKE_PORT: u16 = 500;

/// UDP port of NAT traversal: IKE with the non-ESP marker, and ESP (RFC 3948 section 2).
pub const NAT_T_PORT: u16 = 4500;

/// The non-ESP marker: four zero bytes where an ESP packet has its SPI (RFC 3948 section 2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// A NAT keepalive: one 0xFF byte (RFC 3948 section 2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xff];

/// What a UDP datagram on port 4500 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Datagram<'a> {
    /// A NAT keepalive.
    Keepalive,
    /// An IKE message: the bytes after the non-ESP marker.
    Ike(#[serde(serialize_with = "crate::hex::serialize")] &'a [u8]),
    /// An ESP packet (starting with a non-zero SPI).
    Esp(#[serde(serialize_with = "crate::hex::serialize")] &'a [u8]),
}

impl<'a> Datagram<'a> {
    /// Classifies the payload of a datagram received on port 4500.
    ///
    /// # Errors
    /// [`Error::Truncated`] for a payload too short for any of the three (RFC 3948 section 2:
    /// an ESP header is 8 bytes), [`Error::Malformed`] for a one-byte payload other than 0xFF.
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        match payload {
            [0xff] => Ok(Datagram::Keepalive),
            [_] => Err(Error::Malformed),
            [0, 0, 0, 0, ike @ ..] => Ok(Datagram::Ike(ike)),
            esp if esp.len() >= crate::esp::HEADER_LEN => Ok(Datagram::Esp(esp)),
            _ => Err(Error::Truncated),
        }
    }

    /// The bytes [`Datagram::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Datagram::Keepalive => 1,
            Datagram::Ike(ike) => NON_ESP_MARKER.len() + ike.len(),
            Datagram::Esp(esp) => esp.len(),
        }
    }

    /// Writes the datagram payload at the start of `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`], or [`Error::Unrepresentable`] for an "ESP" packet that would
    /// read back as something else (shorter than 8 bytes or with a zero SPI).
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(Error::BufferTooSmall);
        }
        match self {
            Datagram::Keepalive => buf[0] = NAT_KEEPALIVE[0],
            Datagram::Ike(ike) => {
                buf[..4].copy_from_slice(&NON_ESP_MARKER);
                buf[4..len].copy_from_slice(ike);
            }
            Datagram::Esp(esp) => {
                if esp.len() < crate::esp::HEADER_LEN || esp[..4] == NON_ESP_MARKER {
                    return Err(Error::Unrepresentable);
                }
                buf[..len].copy_from_slice(esp);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classifies() {
        assert_eq!(Datagram::parse(&[0xff]).unwrap(), Datagram::Keepalive);
        assert_eq!(
            Datagram::parse(&[0, 0, 0, 0, 1, 2]).unwrap(),
            Datagram::Ike(&[1, 2])
        );
        let esp = [0xac, 0x0f, 0xaf, 0x03, 0, 0, 0, 1];
        assert_eq!(Datagram::parse(&esp).unwrap(), Datagram::Esp(&esp));
        assert_eq!(Datagram::parse(&[]).unwrap_err(), Error::Truncated);
        assert_eq!(Datagram::parse(&[0]).unwrap_err(), Error::Malformed);
        assert_eq!(Datagram::parse(&[1, 2, 3]).unwrap_err(), Error::Truncated);
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(d) = Datagram::parse(&bytes) {
                let mut buf = std::vec![0u8; d.buffer_len()];
                d.emit(&mut buf).unwrap();
                prop_assert_eq!(&buf, &bytes);
                prop_assert_eq!(Datagram::parse(&buf).unwrap(), d);
            }
        }
    }
}
