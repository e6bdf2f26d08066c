//! Round-trip check of the ikev2 codec.

use dmvpn_wire::ikev2::{Packet, PayloadBody, Repr};

/// Parses `data` as an IKEv2 message; whatever parses must emit, parse again to the same
/// representation, and emit the same bytes a second time. Walking the parsed chain reaches
/// every payload, proposal, transform, attribute and selector.
pub fn check(data: &[u8]) {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let Ok(repr) = Repr::parse(&packet) else {
        return;
    };
    for payload in repr.payloads {
        match payload.body {
            PayloadBody::Sa(proposals) => {
                for proposal in proposals {
                    for transform in proposal.transforms {
                        let _ = transform.key_length();
                    }
                }
            }
            PayloadBody::TsI(selectors) | PayloadBody::TsR(selectors) => {
                selectors.iter().for_each(|ts| {
                    let _ = ts.ts_type();
                });
            }
            PayloadBody::Auth(auth) => {
                let _ = auth.digital_signature();
            }
            PayloadBody::Notify(notify) => {
                let _ = notify.redirect();
            }
            PayloadBody::Delete(delete) => {
                let _ = delete.spis().count();
            }
            _ => {}
        }
    }

    let mut first = vec![0u8; repr.buffer_len()];
    let len = repr.emit(&mut first).expect("a parsed message emits");
    assert_eq!(len, first.len());
    // Emitting changes nothing but RESERVED bits, sent as zero (RFC 7296 section 3.2).
    assert_eq!(len, packet.length() as usize);
    let packet = Packet::new_checked(&first[..]).expect("emitted header checks");
    let again = Repr::parse(&packet).expect("emitted message parses");
    assert_eq!(again, repr);
    let mut second = vec![0u8; again.buffer_len()];
    again.emit(&mut second).expect("second emit");
    assert_eq!(second, first);
}
