//! GRE framing of the packet path (RFC 2784, key per RFC 2890): the header is written in
//! front of the packet, in the buffer's headroom, and read off the front on receipt.

use dmvpn_wire::gre::{Packet, Protocol, Repr};

use crate::batch::PacketBuf;
use crate::counters::DropReason;

/// Prepends a GRE header for `protocol` with the tunnel `key` (no checksum, no sequence
/// number, as Cisco DMVPN sends); false when the headroom is short.
pub fn encapsulate(buf: &mut PacketBuf, protocol: Protocol, key: Option<u32>) -> bool {
    let repr = Repr {
        protocol,
        checksum: false,
        key,
        sequence: None,
    };
    buf.prepend(repr.buffer_len())
        .is_some_and(|head| repr.emit(head).is_ok())
}

/// Reads and strips the GRE header of `buf`'s packet and returns the payload's protocol.
///
/// # Errors
/// [`DropReason::Malformed`] for a header the codec refuses (version, RFC 1701 bits,
/// checksum), [`DropReason::KeyMismatch`] when its key is not `key`.
pub fn decapsulate(buf: &mut PacketBuf, key: Option<u32>) -> Result<Protocol, DropReason> {
    let (repr, len) = {
        let p = Packet::new_checked(buf.packet()).map_err(|_| DropReason::Malformed)?;
        let repr = Repr::parse(&p).map_err(|_| DropReason::Malformed)?;
        (repr, p.header_len())
    };
    if repr.key != key {
        return Err(DropReason::KeyMismatch);
    }
    buf.advance(len);
    Ok(repr.protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_key() {
        let mut b = PacketBuf::new(64);
        b.load(&[0x45, 1, 2, 3]);
        assert!(encapsulate(&mut b, Protocol::Ipv4, Some(100)));
        // RFC 2890 section 2: K bit, protocol 0x0800, key 100.
        assert_eq!(b.packet(), &[0x20, 0, 8, 0, 0, 0, 0, 100, 0x45, 1, 2, 3]);
        assert_eq!(
            decapsulate(&mut b.clone(), None),
            Err(DropReason::KeyMismatch)
        );
        assert_eq!(decapsulate(&mut b, Some(100)), Ok(Protocol::Ipv4));
        assert_eq!(b.packet(), &[0x45, 1, 2, 3]);
        // A version 1 (PPTP) header is malformed for us.
        let mut bad = PacketBuf::new(64);
        bad.load(&[0, 1, 8, 0]);
        assert_eq!(decapsulate(&mut bad, None), Err(DropReason::Malformed));
        let mut short = PacketBuf::new(64);
        short.load(&[0x20, 0, 8, 0, 0]);
        assert_eq!(decapsulate(&mut short, Some(1)), Err(DropReason::Malformed));
    }
}
