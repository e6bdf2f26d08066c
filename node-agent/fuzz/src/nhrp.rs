//! Round-trip check of the nhrp codec.

use dmvpn_wire::nhrp::{Packet, Repr};

/// Parses `data`; whatever parses must emit and parse again to the same representation,
/// and emitting that again must give the same bytes. The same bytes with `ar$chksum` fixed
/// are checked too, so that mutations reach the parsers behind the checksum.
///
/// # Panics
/// When the codec breaks one of these invariants: that is the finding.
pub fn check(data: &[u8]) {
    round_trip(data);
    if let Ok(packet) = Packet::new_checked(data)
        && !packet.verify_checksum()
    {
        let mut fixed = data.to_vec();
        Packet::new_unchecked(&mut fixed[..]).fill_checksum();
        round_trip(&fixed);
    }
}

fn round_trip(data: &[u8]) {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let Ok(repr) = Repr::parse(&packet) else {
        return;
    };
    let len = repr.buffer_len();
    // Parsing covers every byte of ar$pktsz (<= 65535), so emitting writes as many.
    assert_eq!(
        len,
        usize::from(packet.packet_size()),
        "emit changes ar$pktsz"
    );
    let mut first = [0u8; 65536];
    let written = repr.emit(&mut first).expect("a parsed message emits");
    assert_eq!(written, len);
    let reparsed_packet = Packet::new_checked(&first[..len]).expect("emitted header checks");
    let reparsed = Repr::parse(&reparsed_packet).expect("emitted message parses");
    assert_eq!(reparsed, repr);
    assert_eq!(reparsed.buffer_len(), len);
    let mut second = [0u8; 65536];
    let written = reparsed
        .emit(&mut second)
        .expect("a reparsed message emits");
    assert_eq!(&second[..written], &first[..len]);
}
