//! NHRP in the layout of Cisco IOS `debug nhrp packet` and `debug nhrp extension`, which DMVPN
//! engineers read every day: the fixed part `(F)`, the mandatory part `(M)`, each CIE `(C-n)`
//! and each extension with its CIEs.

use std::fmt::Write;

use dmvpn_wire::nhrp::{
    Address, AddressFamily, Cie, CieCode, ErrorCode, ExtensionBody, Message, NbmaAddress,
    Operation, PROTOCOL_IPV4, PROTOCOL_IPV6, PurgeFlags, RegistrationFlags, Repr, ResolutionFlags,
    TrafficCode,
};

/// The debug text of one NHRP message, without a trailing newline.
pub fn debug_nhrp(repr: &Repr<'_>, packet_size: u16, extension_offset: u16) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "NHRP: {}, packet size: {packet_size}",
        operation_name(repr.operation())
    );
    let (shtl, sstl) = source_nbma_type_lengths(&repr.message);
    let _ = writeln!(
        out,
        " (F) afn: {}, type: {}, hop: {}, ver: 1\n     shtl: {shtl}, sstl: {sstl}\n     pktsz: {packet_size} extoff: {extension_offset}",
        afn_name(repr.afn),
        protocol_name(repr.protocol_type),
        repr.hop_count,
    );
    mandatory(&mut out, &repr.message);
    if let Some(extensions) = repr.extensions {
        for ext in extensions.iter() {
            let _ = writeln!(
                out,
                "     {} Extension({}):",
                extension_name(&ext.body),
                u16::from(ext.ty())
            );
            match ext.body {
                ExtensionBody::ResponderAddress(cies)
                | ExtensionBody::ForwardTransit(cies)
                | ExtensionBody::ReverseTransit(cies)
                | ExtensionBody::NatAddress(cies) => {
                    for (i, cie) in cies.iter().enumerate() {
                        cie_lines(&mut out, &cie, &format!("(C-{})", i + 1), 6);
                    }
                }
                ExtensionBody::Authentication { auth_type, data } => {
                    let ty = if auth_type == 1 {
                        "Cleartext"
                    } else {
                        "Unknown"
                    };
                    // The password itself is never printed.
                    let _ = writeln!(
                        out,
                        "        type:{ty}({auth_type}), data:<{} bytes redacted>",
                        data.len()
                    );
                }
                ExtensionBody::VendorPrivate { data } | ExtensionBody::Unknown { data, .. } => {
                    let _ = writeln!(out, "        data: {}", dmvpn_wire::Hex(data));
                }
            }
        }
    }
    out.truncate(out.trim_end().len());
    out
}

fn operation_name(op: Operation) -> String {
    match op {
        Operation::ResolutionRequest => "Resolution Request".into(),
        Operation::ResolutionReply => "Resolution Reply".into(),
        Operation::RegistrationRequest => "Registration Request".into(),
        Operation::RegistrationReply => "Registration Reply".into(),
        Operation::PurgeRequest => "Purge Request".into(),
        Operation::PurgeReply => "Purge Reply".into(),
        Operation::ErrorIndication => "Error Indication".into(),
        Operation::TrafficIndication => "Traffic Indication".into(),
        Operation::Unknown(t) => format!("Unknown Operation({t})"),
    }
}

fn afn_name(afn: AddressFamily) -> String {
    match afn {
        AddressFamily::Ipv4 => "AF_IP(1)".into(),
        AddressFamily::Ipv6 => "AF_IPv6(2)".into(),
        AddressFamily::Unknown(v) => format!("AF_UNKNOWN({v})"),
    }
}

fn protocol_name(ty: u16) -> String {
    match ty {
        PROTOCOL_IPV4 => "IP(800)".into(),
        PROTOCOL_IPV6 => "IPv6(86DD)".into(),
        other => format!("UNKNOWN({other:X})"),
    }
}

/// `4(NSAP)` or `4(E164)`, as Cisco prints a type/length byte.
fn type_len(nbma: &NbmaAddress<'_>) -> String {
    format!(
        "{}({})",
        nbma.address.len(),
        if nbma.e164 { "E164" } else { "NSAP" }
    )
}

fn source_nbma_type_lengths(message: &Message<'_>) -> (String, String) {
    let (nbma, sub) = match message {
        Message::ResolutionRequest(m) | Message::ResolutionReply(m) => (m.src_nbma, m.src_nbma_sub),
        Message::RegistrationRequest(m) | Message::RegistrationReply(m) => {
            (m.src_nbma, m.src_nbma_sub)
        }
        Message::PurgeRequest(m) | Message::PurgeReply(m) => (m.src_nbma, m.src_nbma_sub),
        Message::ErrorIndication(m) => (m.src_nbma, m.src_nbma_sub),
        Message::TrafficIndication(m) => (m.src_nbma, m.src_nbma_sub),
        Message::Unknown { shtl, sstl, .. } => {
            return (
                format!("{}(raw)", shtl & 0x3f),
                format!("{}(raw)", sstl & 0x3f),
            );
        }
    };
    (type_len(&nbma), type_len(&sub))
}

fn addr(a: &Address<'_>) -> String {
    match a {
        Address::Empty => "(none)".into(),
        Address::Ipv4(v4) => v4.to_string(),
        Address::Ipv6(v6) => v6.to_string(),
        Address::Other(bytes) => dmvpn_wire::Hex(bytes).to_string(),
    }
}

/// Cisco's flag words for the bits of `raw`, in the order IOS prints them; bits without a
/// word are shown in hex.
fn flag_words(raw: u16, words: &[(u16, &str)]) -> String {
    let mut s: String = words
        .iter()
        .filter(|(bit, _)| raw & bit != 0)
        .map(|(_, w)| format!("{w} "))
        .collect();
    let known = words.iter().fold(0, |acc, (bit, _)| acc | bit);
    if raw & !known != 0 {
        let _ = write!(s, "0x{:04x} ", raw & !known);
    }
    s
}

fn resolution_flags(f: ResolutionFlags) -> String {
    flag_words(
        f.0,
        &[
            (ResolutionFlags::ROUTER.0, "router"),
            (ResolutionFlags::AUTHORITATIVE.0, "auth"),
            (ResolutionFlags::DESTINATION_STABLE.0, "dst-stable"),
            (ResolutionFlags::UNIQUE.0, "unique"),
            (ResolutionFlags::SOURCE_STABLE.0, "src-stable"),
            (ResolutionFlags::NAT.0, "nat"),
        ],
    )
}

fn registration_flags(f: RegistrationFlags) -> String {
    flag_words(
        f.0,
        &[
            (RegistrationFlags::UNIQUE.0, "unique"),
            (RegistrationFlags::NAT.0, "nat"),
        ],
    )
}

fn purge_flags(f: PurgeFlags) -> String {
    flag_words(
        f.0,
        &[
            (PurgeFlags::NO_REPLY.0, "no-reply"),
            (PurgeFlags::NAT.0, "nat"),
        ],
    )
}

fn mandatory(out: &mut String, message: &Message<'_>) {
    let common = |out: &mut String,
                  flags: String,
                  request_id: u32,
                  src_nbma: &NbmaAddress<'_>,
                  src: &Address<'_>,
                  dst: &Address<'_>| {
        let _ = writeln!(out, " (M) flags: \"{flags}\", reqid: {request_id}");
        let _ = writeln!(out, "     src NBMA: {}", addr(&src_nbma.address));
        let _ = writeln!(
            out,
            "     src protocol: {}, dst protocol: {}",
            addr(src),
            addr(dst)
        );
    };
    let cies = match message {
        Message::ResolutionRequest(m) | Message::ResolutionReply(m) => {
            common(
                out,
                resolution_flags(m.flags),
                m.request_id,
                &m.src_nbma,
                &m.src_proto,
                &m.dst_proto,
            );
            Some(m.cies)
        }
        Message::RegistrationRequest(m) | Message::RegistrationReply(m) => {
            common(
                out,
                registration_flags(m.flags),
                m.request_id,
                &m.src_nbma,
                &m.src_proto,
                &m.dst_proto,
            );
            Some(m.cies)
        }
        Message::PurgeRequest(m) | Message::PurgeReply(m) => {
            common(
                out,
                purge_flags(m.flags),
                m.request_id,
                &m.src_nbma,
                &m.src_proto,
                &m.dst_proto,
            );
            Some(m.cies)
        }
        Message::ErrorIndication(m) => {
            let _ = writeln!(
                out,
                " (M) error code: {}, offset: {}",
                error_name(m.code),
                m.offset
            );
            let _ = writeln!(out, "     src NBMA: {}", addr(&m.src_nbma.address));
            let _ = writeln!(
                out,
                "     src protocol: {}, dst protocol: {}",
                addr(&m.src_proto),
                addr(&m.dst_proto)
            );
            let _ = writeln!(out, "     packet in error: {} bytes", m.packet.len());
            None
        }
        Message::TrafficIndication(m) => {
            let code = match m.code {
                TrafficCode::Redirect => "redirect(0)".to_string(),
                TrafficCode::Unknown(c) => format!("unknown({c})"),
            };
            let _ = writeln!(out, " (M) traffic code: {code}");
            let _ = writeln!(out, "     src NBMA: {}", addr(&m.src_nbma.address));
            let _ = writeln!(
                out,
                "     src protocol: {}, dst protocol: {}",
                addr(&m.src_proto),
                addr(&m.dst_proto)
            );
            let _ = writeln!(out, "     data packet: {} bytes", m.packet.len());
            None
        }
        Message::Unknown { mandatory, .. } => {
            let _ = writeln!(out, " (M) {} bytes not decoded", mandatory.len());
            None
        }
    };
    for (i, cie) in cies.into_iter().flat_map(|c| c.iter()).enumerate() {
        cie_lines(out, &cie, &format!("(C-{})", i + 1), 1);
    }
}

fn cie_lines(out: &mut String, cie: &Cie<'_>, tag: &str, indent: usize) {
    let pad = " ".repeat(indent);
    let cont = " ".repeat(indent + tag.len() + 1);
    let _ = writeln!(out, "{pad}{tag} code: {}", cie_code_name(cie.code));
    let _ = writeln!(
        out,
        "{cont}prefix: {}, mtu: {}, hd_time: {}",
        cie.prefix_len, cie.mtu, cie.holding_time
    );
    let _ = writeln!(
        out,
        "{cont}addr_len: {}, subaddr_len: {}, proto_len: {}, pref: {}",
        type_len(&cie.nbma),
        type_len(&cie.nbma_sub),
        cie.proto.len(),
        cie.preference
    );
    if !cie.nbma.address.is_empty() {
        let _ = writeln!(out, "{cont}client NBMA: {}", addr(&cie.nbma.address));
    }
    if !cie.proto.is_empty() {
        let _ = writeln!(out, "{cont}client protocol: {}", addr(&cie.proto));
    }
}

fn cie_code_name(code: CieCode) -> String {
    match code {
        CieCode::Success => "no error(0)".into(),
        CieCode::AdministrativelyProhibited => "administratively prohibited(4)".into(),
        CieCode::InsufficientResources => "insufficient resources(5)".into(),
        CieCode::NoBindingExists => "no binding exists(12)".into(),
        CieCode::BindingNotUnique => "binding not unique(13)".into(),
        CieCode::UniqueAddressAlreadyRegistered => "unique address already registered(14)".into(),
        CieCode::Unknown(c) => format!("unknown({c})"),
    }
}

fn error_name(code: ErrorCode) -> String {
    let (name, value) = match code {
        ErrorCode::UnrecognizedExtension => ("unrecognized extension", 1),
        ErrorCode::LoopDetected => ("loop detected", 3),
        ErrorCode::ProtocolAddressUnreachable => ("protocol address unreachable", 6),
        ErrorCode::ProtocolError => ("protocol error", 7),
        ErrorCode::SduSizeExceeded => ("SDU size exceeded", 8),
        ErrorCode::InvalidExtension => ("invalid extension", 9),
        ErrorCode::InvalidResolutionReply => ("invalid resolution reply", 10),
        ErrorCode::AuthenticationFailure => ("authentication failure", 11),
        ErrorCode::HopCountExceeded => ("hop count exceeded", 15),
        ErrorCode::Unknown(c) => return format!("unknown({c})"),
    };
    format!("{name}({value})")
}

fn extension_name(body: &ExtensionBody<'_>) -> &'static str {
    match body {
        ExtensionBody::ResponderAddress(_) => "Responder Address",
        ExtensionBody::ForwardTransit(_) => "Forward Transit NHS Record",
        ExtensionBody::ReverseTransit(_) => "Reverse Transit NHS Record",
        ExtensionBody::Authentication { .. } => "Authentication",
        ExtensionBody::VendorPrivate { .. } => "Vendor Private",
        ExtensionBody::NatAddress(_) => "NAT address",
        ExtensionBody::Unknown { .. } => "Unknown",
    }
}
