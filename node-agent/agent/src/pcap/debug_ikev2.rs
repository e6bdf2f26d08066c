//! IKEv2 in the one-line form strongSwan logs (`parsed IKE_SA_INIT request 0 [ SA KE No
//! N(NAT_DETECTION_SOURCE_IP) ]`), which IPsec engineers scan first, followed by the SPIs.

use dmvpn_wire::ikev2::{ExchangeType, PayloadBody, PayloadType, Repr};

/// `IKE_SA_INIT request 0 [ SA KE No N(...) ]` and the SPI line.
pub fn debug_ikev2(repr: &Repr<'_>) -> String {
    let exchange = match repr.exchange_type {
        ExchangeType::Unknown(t) => format!("EXCHANGE_{t}"),
        known => screaming(&format!("{known:?}")),
    };
    let direction = if repr.flags.response() {
        "response"
    } else {
        "request"
    };
    let payloads: Vec<String> = repr.payloads.iter().map(|p| payload_tag(&p.body)).collect();
    format!(
        "{exchange} {direction} {} [ {} ]\nspi_i {:016x}, spi_r {:016x}, {}",
        repr.message_id,
        payloads.join(" "),
        repr.initiator_spi,
        repr.responder_spi,
        if repr.flags.initiator() {
            "from the original initiator"
        } else {
            "from the original responder"
        },
    )
}

/// strongSwan's payload abbreviations.
pub(super) fn payload_tag(body: &PayloadBody<'_>) -> String {
    match body {
        PayloadBody::Sa(_) => "SA".into(),
        PayloadBody::Ke(_) => "KE".into(),
        PayloadBody::IdI(_) => "IDi".into(),
        PayloadBody::IdR(_) => "IDr".into(),
        PayloadBody::Cert(_) => "CERT".into(),
        PayloadBody::CertReq(_) => "CERTREQ".into(),
        PayloadBody::Auth(_) => "AUTH".into(),
        PayloadBody::Nonce(_) => "No".into(),
        PayloadBody::Notify(n) => format!("N({})", screaming(&format!("{:?}", n.notify_type))),
        PayloadBody::Delete(_) => "D".into(),
        PayloadBody::VendorId(_) => "V".into(),
        PayloadBody::TsI(_) => "TSi".into(),
        PayloadBody::TsR(_) => "TSr".into(),
        PayloadBody::Encrypted(e) => format!("SK({})", inner(e.first_inner)),
        PayloadBody::EncryptedFragment(f) => {
            format!("EF({}/{})", f.fragment_number, f.total_fragments)
        }
        PayloadBody::Opaque { ty, .. } => match ty {
            PayloadType::Cp => "CP".into(),
            PayloadType::Eap => "EAP".into(),
            other => format!("{:?}", other),
        },
    }
}

fn inner(ty: PayloadType) -> String {
    format!("{ty:?}")
}

/// `NatDetectionSourceIp` → `NAT_DETECTION_SOURCE_IP`; `Unknown(16404)` stays as it is.
fn screaming(camel: &str) -> String {
    if camel.contains('(') {
        return camel.to_owned();
    }
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::screaming;

    #[test]
    fn names_read_like_the_rfc() {
        assert_eq!(screaming("IkeSaInit"), "IKE_SA_INIT");
        assert_eq!(screaming("NatDetectionSourceIp"), "NAT_DETECTION_SOURCE_IP");
        assert_eq!(screaming("Unknown(16404)"), "Unknown(16404)");
    }
}
