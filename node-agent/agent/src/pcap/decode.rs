//! Layer-by-layer decoding of one frame with the `dmvpn-wire` codecs.

use std::net::IpAddr;

use dmvpn_wire::{esp, gre, ikev2, ipv4, ipv6, nhrp, udp, udp_encap};
use serde::Serialize;
use serde_json::Value;

use super::capture::RawFrame;
use super::keylog::{EspKeys, KeyLog};

/// How deep tunnels may nest (IP in GRE in IP ...) before decoding stops: a crafted capture
/// cannot make the decoder recurse without bound.
const MAX_DEPTH: usize = 8;

/// Whether a layer emitted back to the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Roundtrip {
    /// `emit(parse(bytes)) == bytes`.
    Exact,
    /// The emitted bytes differ: a codec bug.
    Mismatch,
}

/// One decoded protocol layer.
#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    /// The protocol: `ipv4`, `ipv6`, `udp`, `gre`, `nhrp`, `ikev2`, `esp`, `nat-keepalive`...
    pub protocol: &'static str,
    /// The fields, as the codec's representation serializes them.
    pub fields: Value,
    /// The round-trip verdict, for layers that were understood.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roundtrip: Option<Roundtrip>,
    /// Why the layer could not be decoded (or, for a bad checksum, what is wrong with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The text an engineer reads for this layer (a `tcpdump`-like line, Cisco's `debug nhrp
    /// packet`, strongSwan's message summary); the text output shows it instead of `fields`.
    #[serde(skip)]
    pub text: Option<String>,
}

/// One decoded frame.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    /// 1-based frame number, as tshark counts.
    pub number: usize,
    /// Seconds since the epoch.
    pub time: f64,
    /// Captured length.
    pub length: usize,
    /// The layers from the network layer inwards.
    pub layers: Vec<Layer>,
}

impl Frame {
    /// Whether any layer failed its round trip.
    pub fn has_mismatch(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.roundtrip == Some(Roundtrip::Mismatch))
    }
}

/// Decodes one captured frame; ESP and IKE stay encrypted.
pub fn decode_frame(number: usize, raw: &RawFrame) -> Frame {
    decode_frame_with_keys(number, raw, &KeyLog::default())
}

/// Decodes one captured frame, decrypting the ESP packets and IKE SK payloads whose SAs
/// `keys` holds.
pub fn decode_frame_with_keys(number: usize, raw: &RawFrame, keys: &KeyLog) -> Frame {
    let mut layers = Vec::new();
    match raw.link.strip(&raw.data) {
        Some(ip) => decode_ip(ip, &mut layers, keys, 0),
        None => layers.push(opaque(
            "link",
            &raw.data,
            format!("link type {:?} not decoded", raw.link),
        )),
    }
    Frame {
        number,
        time: raw.timestamp.as_secs_f64(),
        length: raw.data.len(),
        layers,
    }
}

fn fields<T: Serialize>(repr: &T) -> Value {
    serde_json::to_value(repr).unwrap_or_else(|e| Value::String(format!("<unserializable: {e}>")))
}

pub(super) fn verdict(ok: bool) -> Option<Roundtrip> {
    Some(if ok {
        Roundtrip::Exact
    } else {
        Roundtrip::Mismatch
    })
}

pub(super) fn layer(protocol: &'static str, fields: Value, roundtrip: Option<Roundtrip>) -> Layer {
    Layer {
        protocol,
        fields,
        roundtrip,
        error: None,
        text: None,
    }
}

pub(super) fn failed(protocol: &'static str, error: impl ToString) -> Layer {
    Layer {
        protocol,
        fields: Value::Null,
        roundtrip: None,
        error: Some(error.to_string()),
        text: None,
    }
}

fn opaque(protocol: &'static str, bytes: &[u8], why: String) -> Layer {
    let fields = serde_json::json!({ "length": bytes.len() });
    Layer {
        protocol,
        fields,
        roundtrip: None,
        error: Some(why),
        text: None,
    }
}

impl Layer {
    pub(super) fn with_text(mut self, text: String) -> Self {
        self.text = Some(text);
        self
    }
}

/// An IPv4 or IPv6 packet, told apart by its version nibble.
fn decode_ip(bytes: &[u8], layers: &mut Vec<Layer>, keys: &KeyLog, depth: usize) {
    if depth > MAX_DEPTH {
        layers.push(opaque("ip", bytes, "tunnels nested too deep".into()));
        return;
    }
    match bytes.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(bytes, layers, keys, depth),
        Some(6) => decode_ipv6(bytes, layers, keys, depth),
        _ => layers.push(failed("ip", "not an IPv4 or IPv6 packet")),
    }
}

fn decode_ipv4(bytes: &[u8], layers: &mut Vec<Layer>, keys: &KeyLog, depth: usize) {
    let packet = match ipv4::Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return layers.push(failed("ipv4", e)),
    };
    match ipv4::Repr::parse(&packet) {
        Ok(repr) => {
            let mut buf = vec![0u8; repr.buffer_len()];
            let ok = repr.emit(&mut buf).is_ok() && buf[..] == bytes[..packet.header_len()];
            let text = format!(
                "{} > {}: proto {}, ttl {}, id {}{}, length {}",
                repr.src,
                repr.dst,
                repr.protocol,
                repr.ttl,
                repr.ident,
                if repr.dont_frag { ", DF" } else { "" },
                packet.total_len()
            );
            layers.push(layer("ipv4", fields(&repr), verdict(ok)).with_text(text));
        }
        // Checksum offload leaves bad checksums in captures taken on the sender: say so and
        // go on with the view.
        Err(e) => layers.push(Layer {
            protocol: "ipv4",
            fields: serde_json::json!({
                "src": packet.src_addr(), "dst": packet.dst_addr(),
                "protocol": packet.protocol(), "ttl": packet.ttl(),
            }),
            roundtrip: None,
            error: Some(e.to_string()),
            text: Some(format!(
                "{} > {}: proto {}",
                packet.src_addr(),
                packet.dst_addr(),
                packet.protocol()
            )),
        }),
    }
    let (src, dst) = (IpAddr::V4(packet.src_addr()), IpAddr::V4(packet.dst_addr()));
    if packet.frag_offset() != 0 || packet.more_frags() {
        return layers.push(opaque(
            "fragment",
            packet.payload(),
            "IP fragment not reassembled".into(),
        ));
    }
    decode_transport(
        packet.protocol(),
        packet.payload(),
        (src, dst),
        layers,
        keys,
        depth,
    );
}

fn decode_ipv6(bytes: &[u8], layers: &mut Vec<Layer>, keys: &KeyLog, depth: usize) {
    let packet = match ipv6::Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return layers.push(failed("ipv6", e)),
    };
    let Ok(repr) = ipv6::Repr::parse(&packet) else {
        return layers.push(failed("ipv6", "unparsable header"));
    };
    let mut buf = [0u8; ipv6::HEADER_LEN];
    let ok = repr.emit(&mut buf).is_ok() && buf[..] == bytes[..ipv6::HEADER_LEN];
    let text = format!(
        "{} > {}: next header {}, hop limit {}, payload length {}",
        repr.src, repr.dst, repr.next_header, repr.hop_limit, repr.payload_len
    );
    layers.push(layer("ipv6", fields(&repr), verdict(ok)).with_text(text));
    let addrs = (IpAddr::V6(packet.src_addr()), IpAddr::V6(packet.dst_addr()));
    decode_transport(
        packet.next_header(),
        packet.payload(),
        addrs,
        layers,
        keys,
        depth,
    );
}

fn decode_transport(
    protocol: u8,
    payload: &[u8],
    addrs: (IpAddr, IpAddr),
    layers: &mut Vec<Layer>,
    keys: &KeyLog,
    depth: usize,
) {
    match protocol {
        udp::IP_PROTOCOL => decode_udp(payload, addrs, layers, keys, depth),
        gre::IP_PROTOCOL => decode_gre(payload, layers, keys, depth),
        esp::IP_PROTOCOL => decode_esp(payload, addrs, layers, keys, depth),
        // IP in IP (tunnel-mode ESP decrypted elsewhere, or IPv6 over IPv4).
        4 | 41 => decode_ip(payload, layers, keys, depth + 1),
        other => layers.push(
            layer(
                "payload",
                serde_json::json!({ "ip_protocol": other, "length": payload.len() }),
                None,
            )
            .with_text(format!("IP protocol {other}, {} bytes", payload.len())),
        ),
    }
}

fn decode_udp(
    bytes: &[u8],
    addrs: (IpAddr, IpAddr),
    layers: &mut Vec<Layer>,
    keys: &KeyLog,
    depth: usize,
) {
    let packet = match udp::Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return layers.push(failed("udp", e)),
    };
    let Ok(repr) = udp::Repr::parse(&packet) else {
        return layers.push(failed("udp", "unparsable header"));
    };
    let datagram = &bytes[..usize::from(packet.len())];
    let mut buf = datagram.to_vec();
    let with_checksum = (packet.checksum() != 0).then_some(addrs);
    let ok = repr.emit(&mut buf, with_checksum).is_ok()
        && buf[..udp::HEADER_LEN] == datagram[..udp::HEADER_LEN];
    let text = format!(
        "{} > {}, length {}",
        repr.src_port,
        repr.dst_port,
        packet.len()
    );
    let mut l = layer("udp", fields(&repr), verdict(ok)).with_text(text);
    if !packet.verify_checksum(addrs.0, addrs.1) {
        l.roundtrip = None;
        l.error = Some("bad checksum (offloaded?)".into());
    }
    layers.push(l);
    let payload = packet.payload();
    let ports = [packet.src_port(), packet.dst_port()];
    if ports.contains(&udp_encap::NAT_T_PORT) {
        decode_nat_t(payload, addrs, layers, keys, depth);
    } else if ports.contains(&udp_encap::IKE_PORT) {
        decode_ikev2(payload, layers, keys);
    } else if ports.contains(&gre::GRE_IN_UDP_PORT) {
        decode_gre(payload, layers, keys, depth);
    }
}

/// RFC 3948: keepalive, IKE behind the non-ESP marker, or ESP.
fn decode_nat_t(
    bytes: &[u8],
    addrs: (IpAddr, IpAddr),
    layers: &mut Vec<Layer>,
    keys: &KeyLog,
    depth: usize,
) {
    match udp_encap::Datagram::parse(bytes) {
        Ok(udp_encap::Datagram::Keepalive) => {
            layers.push(layer(
                "nat-keepalive",
                Value::Null,
                verdict(bytes == udp_encap::NAT_KEEPALIVE),
            ));
        }
        Ok(udp_encap::Datagram::Ike(ike)) => {
            layers.push(layer(
                "non-esp-marker",
                Value::Null,
                verdict(bytes[..4] == udp_encap::NON_ESP_MARKER),
            ));
            decode_ikev2(ike, layers, keys);
        }
        Ok(udp_encap::Datagram::Esp(esp)) => decode_esp(esp, addrs, layers, keys, depth),
        Err(e) => layers.push(failed("udp-encap", e)),
    }
}

fn decode_esp(
    bytes: &[u8],
    addrs: (IpAddr, IpAddr),
    layers: &mut Vec<Layer>,
    keys: &KeyLog,
    depth: usize,
) {
    let packet = match esp::Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return layers.push(failed("esp", e)),
    };
    let Ok(repr) = esp::Repr::parse(&packet) else {
        return layers.push(failed("esp", "unparsable header"));
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    let ok = repr.emit(&mut buf).is_ok() && buf == bytes;
    // The encrypted part is opaque without keys: show its length only.
    let fields = serde_json::json!({
        "spi": format!("0x{:08x}", repr.spi),
        "sequence": repr.sequence,
        "encrypted_length": repr.payload.len(),
    });
    let text = format!(
        "spi 0x{:08x}, seq {}, {} bytes encrypted",
        repr.spi,
        repr.sequence,
        repr.payload.len()
    );
    layers.push(layer("esp", fields, verdict(ok)).with_text(text));
    if let Some(k) = keys.esp(repr.spi, addrs.0, addrs.1) {
        decrypt_esp(bytes, k, layers, keys, depth);
    }
}

/// Opens an ESP packet with the key log's keys and decodes what it carries: GRE in transport
/// mode (the DMVPN shape), IP in tunnel mode (RFC 4303 section 3.1).
fn decrypt_esp(bytes: &[u8], k: &EspKeys, layers: &mut Vec<Layer>, keys: &KeyLog, depth: usize) {
    let algorithm = k.key.algorithm().name();
    let (opened, buf) = match super::decrypt::esp(bytes, k) {
        Ok(o) => o,
        Err(e) => return layers.push(failed("esp-decrypted", format!("{algorithm}: {e}"))),
    };
    let Some(payload) = buf.get(opened.payload.clone()) else {
        return layers.push(failed("esp-decrypted", "payload outside the packet"));
    };
    let fields = serde_json::json!({
        "algorithm": algorithm,
        "sequence": opened.sequence,
        "next_header": opened.next_header,
        "payload_length": payload.len(),
        "icv": "good",
    });
    let text = format!(
        "decrypted with {algorithm}, ICV good: next header {}, {} bytes",
        opened.next_header,
        payload.len()
    );
    layers.push(layer("esp-decrypted", fields, None).with_text(text));
    match opened.next_header {
        dmvpn_esp::sa::NEXT_HEADER_GRE => decode_gre(payload, layers, keys, depth),
        dmvpn_esp::sa::NEXT_HEADER_IPV4 | dmvpn_esp::sa::NEXT_HEADER_IPV6 => {
            decode_ip(payload, layers, keys, depth + 1)
        }
        other => layers.push(
            layer(
                "payload",
                serde_json::json!({ "ip_protocol": other, "length": payload.len() }),
                None,
            )
            .with_text(format!("IP protocol {other}, {} bytes", payload.len())),
        ),
    }
}

fn decode_gre(bytes: &[u8], layers: &mut Vec<Layer>, keys: &KeyLog, depth: usize) {
    let packet = match gre::Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return layers.push(failed("gre", e)),
    };
    let repr = match gre::Repr::parse(&packet) {
        Ok(r) => r,
        Err(e) => return layers.push(failed("gre", e)),
    };
    let mut buf = bytes.to_vec();
    let ok = repr.emit(&mut buf).is_ok() && buf == bytes;
    let mut text = match repr.protocol {
        gre::Protocol::Nhrp => "protocol NHRP (0x2001)".to_string(),
        gre::Protocol::Ipv4 => "protocol IPv4 (0x0800)".to_string(),
        gre::Protocol::Ipv6 => "protocol IPv6 (0x86dd)".to_string(),
        gre::Protocol::Unknown(p) => format!("protocol 0x{p:04x}"),
    };
    if let Some(key) = repr.key {
        text.push_str(&format!(", key {key}"));
    }
    if let Some(seq) = repr.sequence {
        text.push_str(&format!(", seq {seq}"));
    }
    if repr.checksum {
        text.push_str(", checksum ok");
    }
    layers.push(layer("gre", fields(&repr), verdict(ok)).with_text(text));
    match repr.protocol {
        gre::Protocol::Nhrp => decode_nhrp(packet.payload(), layers, keys, depth),
        gre::Protocol::Ipv4 | gre::Protocol::Ipv6 => {
            decode_ip(packet.payload(), layers, keys, depth + 1)
        }
        gre::Protocol::Unknown(_) => {}
    }
}

fn decode_nhrp(bytes: &[u8], layers: &mut Vec<Layer>, keys: &KeyLog, depth: usize) {
    let packet = match nhrp::Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return layers.push(failed("nhrp", e)),
    };
    let repr = match nhrp::Repr::parse(&packet) {
        Ok(r) => r,
        Err(e) => return layers.push(failed("nhrp", e)),
    };
    let original = &bytes[..usize::from(packet.packet_size())];
    let mut buf = vec![0u8; repr.buffer_len()];
    let ok = matches!(repr.emit(&mut buf), Ok(n) if buf[..n] == *original);
    let text =
        super::debug_nhrp::debug_nhrp(&repr, packet.packet_size(), packet.extension_offset());
    layers.push(layer("nhrp", fields(&repr), verdict(ok)).with_text(text));
    match &repr.message {
        // A traffic indication carries the start of the data packet that triggered it.
        nhrp::Message::TrafficIndication(ti) => decode_ip(ti.packet, layers, keys, depth + 1),
        // An error indication carries the packet in error; FRR nhrpd cuts it after the
        // mandatory part, which then does not decode on its own.
        nhrp::Message::ErrorIndication(ei)
            if depth < MAX_DEPTH && nhrp::Packet::new_checked(ei.packet).is_ok() =>
        {
            decode_nhrp(ei.packet, layers, keys, depth + 1);
        }
        _ => {}
    }
}

fn decode_ikev2(bytes: &[u8], layers: &mut Vec<Layer>, keys: &KeyLog) {
    let packet = match ikev2::Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return layers.push(failed("ikev2", e)),
    };
    let repr = match ikev2::Repr::parse(&packet) {
        Ok(r) => r,
        Err(e) => return layers.push(failed("ikev2", e)),
    };
    let original = &bytes[..packet.length() as usize];
    let mut buf = vec![0u8; repr.buffer_len()];
    let ok = matches!(repr.emit(&mut buf), Ok(n) if buf[..n] == *original);
    let text = super::debug_ikev2::debug_ikev2(&repr);
    layers.push(layer("ikev2", fields(&repr), verdict(ok)).with_text(text));
    if let Some(k) = keys.ike(repr.initiator_spi, repr.responder_spi) {
        let key = if repr.flags.initiator() {
            &k.sk_ei
        } else {
            &k.sk_er
        };
        if let Some(l) = super::decrypt::ikev2_sk(&repr, original, key) {
            layers.push(l);
        }
    }
}
