//! Why the engine dropped a packet: one variant per reason, each a metric label
//! (rustls `PeerMisbehaved` style). Bad packets are dropped and counted, never a panic.

/// The reason a received NHRP packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum DropReason {
    /// The wire codec refused the packet (length, checksum, offset, version, reserved bits,
    /// unknown compulsory extension).
    Malformed,
    /// `ar$afn` or `ar$pro.type` is not the family of this interface, or an address in the
    /// packet is not an IP address of that family.
    WrongAddressFamily,
    /// Authentication is configured and the packet carries no authentication extension
    /// (RFC 2332 section 5.3.4; FRR nhrpd `nhrp_connection_authorized`).
    AuthenticationMissing,
    /// The authentication extension differs from the configured one, byte for byte.
    AuthenticationMismatch,
    /// A message type this role does not handle (a registration request at a spoke, a
    /// reply nobody asked for, a type this milestone does not implement).
    UnexpectedMessage,
    /// A request addressed to another protocol address.
    NotForUs,
    /// A registration whose source protocol address is outside the tunnel subnet.
    SourceOutsideSubnet,
    /// A reply whose request ID matches no outstanding request.
    UnknownRequestId,
    /// A reply from an address that is not a configured NHS.
    UnknownNhs,
    /// A request without any CIE, or a reply with fewer CIEs than its request had.
    MissingCie,
    /// A resolution reply naming a shortcut we refuse: one covering the tunnel subnet,
    /// replacing a local or static entry, or pointing at ourselves.
    InvalidShortcut,
    /// A resolution reply from neither the NHS asked nor the owner of the binding.
    UnexpectedResponder,
    /// A resolution request whose Forward Transit NHS Record, or a reply whose Reverse
    /// Transit NHS Record, already names this router (RFC 2332 sections 5.3.2 and 5.3.3);
    /// answered with Error Indication code 3.
    LoopDetected,
    /// A resolution request or reply to forward with hop count 1 or less (RFC 2332
    /// section 5.2.0.1); answered with Error Indication code 15.
    HopCountExceeded,
    /// A resolution request or reply an NHS must forward but has no next hop for (RFC 2332
    /// section 5.2.7); answered with Error Indication code 6.
    ProtocolAddressUnreachable,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 15] = [
        DropReason::Malformed,
        DropReason::WrongAddressFamily,
        DropReason::AuthenticationMissing,
        DropReason::AuthenticationMismatch,
        DropReason::UnexpectedMessage,
        DropReason::NotForUs,
        DropReason::SourceOutsideSubnet,
        DropReason::UnknownRequestId,
        DropReason::UnknownNhs,
        DropReason::MissingCie,
        DropReason::InvalidShortcut,
        DropReason::UnexpectedResponder,
        DropReason::LoopDetected,
        DropReason::HopCountExceeded,
        DropReason::ProtocolAddressUnreachable,
    ];

    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::WrongAddressFamily => "wrong_address_family",
            DropReason::AuthenticationMissing => "authentication_missing",
            DropReason::AuthenticationMismatch => "authentication_mismatch",
            DropReason::UnexpectedMessage => "unexpected_message",
            DropReason::NotForUs => "not_for_us",
            DropReason::SourceOutsideSubnet => "source_outside_subnet",
            DropReason::UnknownRequestId => "unknown_request_id",
            DropReason::UnknownNhs => "unknown_nhs",
            DropReason::MissingCie => "missing_cie",
            DropReason::InvalidShortcut => "invalid_shortcut",
            DropReason::UnexpectedResponder => "unexpected_responder",
            DropReason::LoopDetected => "loop_detected",
            DropReason::HopCountExceeded => "hop_count_exceeded",
            DropReason::ProtocolAddressUnreachable => "protocol_address_unreachable",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}
