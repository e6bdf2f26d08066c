//! Why the engine dropped a message: one variant per RFC violation or refusal, each a
//! metric label (rustls `PeerMisbehaved` style). A dropped message never changes state.

/// The reason a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// The codec refused the header or the payload chain (RFC 7296 sections 3.1, 3.2).
    Malformed,
    /// A major version other than 2 (RFC 7296 section 2.5).
    UnsupportedVersion,
    /// On port 4500 without the non-ESP marker, or a one-byte datagram that is not a
    /// keepalive (RFC 3948 section 2.2).
    NotIke,
    /// No IKE SA has the message's SPIs (RFC 7296 section 2.21.4).
    UnknownSpi,
    /// The I or R flag contradicts our role (RFC 7296 section 3.1).
    WrongFlags,
    /// An exchange type not valid in the SA's state (RFC 7296 section 1).
    UnexpectedExchange,
    /// A request outside the message-ID window (RFC 7296 section 2.3).
    InvalidMessageId,
    /// A response to no outstanding request, or a retransmitted response (section 2.3).
    UnexpectedResponse,
    /// The SK payload's ICV did not verify, or it was missing (section 3.14).
    IntegrityCheckFailed,
    /// A payload the exchange requires is missing (sections 1.2 to 1.4).
    MissingPayload,
    /// A nonce outside 16..=256 bytes (section 2.10).
    InvalidNonce,
    /// A Diffie-Hellman public value that is not a point of the group (RFC 5903, 8031).
    InvalidKeyExchange,
    /// The responder chose a proposal or transform we did not offer (section 3.3.6).
    ProposalNotOffered,
    /// The peer's AUTH payload did not verify (section 2.15).
    AuthenticationFailed,
    /// An IKE_SA_INIT with a cookie we did not give (section 2.6).
    InvalidCookie,
    /// An IKE_SA_INIT while the half-open table is full even for cookie holders.
    HalfOpenLimit,
    /// An IKE_SA_INIT request that repeats a known SPI with different bytes.
    DuplicateInit,
    /// The peer's certificate chain failed validation against our CAs (expired, unknown
    /// issuer, bad signature, key usage; RFC 5280 section 6), or signature authentication
    /// came without a certificate (RFC 7296 section 3.6).
    CertificateRefused,
    /// The peer's IKE ID is not vouched for by its certificate (RFC 4945 section 3.1).
    IdentityNotCertified,
    /// An SKF fragment that is not acceptable: fragmentation not negotiated, numbers the
    /// reassembly refuses, or a message past its limits (RFC 7383 sections 2.5, 2.6).
    FragmentRefused,
    /// An incomplete fragmented message whose reassembly timed out (RFC 7383 section 2.6);
    /// counted once per message.
    ReassemblyExpired,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 21] = [
        DropReason::Malformed,
        DropReason::UnsupportedVersion,
        DropReason::NotIke,
        DropReason::UnknownSpi,
        DropReason::WrongFlags,
        DropReason::UnexpectedExchange,
        DropReason::InvalidMessageId,
        DropReason::UnexpectedResponse,
        DropReason::IntegrityCheckFailed,
        DropReason::MissingPayload,
        DropReason::InvalidNonce,
        DropReason::InvalidKeyExchange,
        DropReason::ProposalNotOffered,
        DropReason::AuthenticationFailed,
        DropReason::InvalidCookie,
        DropReason::HalfOpenLimit,
        DropReason::DuplicateInit,
        DropReason::CertificateRefused,
        DropReason::IdentityNotCertified,
        DropReason::FragmentRefused,
        DropReason::ReassemblyExpired,
    ];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedVersion => "unsupported_version",
            DropReason::NotIke => "not_ike",
            DropReason::UnknownSpi => "unknown_spi",
            DropReason::WrongFlags => "wrong_flags",
            DropReason::UnexpectedExchange => "unexpected_exchange",
            DropReason::InvalidMessageId => "invalid_message_id",
            DropReason::UnexpectedResponse => "unexpected_response",
            DropReason::IntegrityCheckFailed => "integrity_check_failed",
            DropReason::MissingPayload => "missing_payload",
            DropReason::InvalidNonce => "invalid_nonce",
            DropReason::InvalidKeyExchange => "invalid_key_exchange",
            DropReason::ProposalNotOffered => "proposal_not_offered",
            DropReason::AuthenticationFailed => "authentication_failed",
            DropReason::InvalidCookie => "invalid_cookie",
            DropReason::HalfOpenLimit => "half_open_limit",
            DropReason::DuplicateInit => "duplicate_init",
            DropReason::CertificateRefused => "certificate_refused",
            DropReason::IdentityNotCertified => "identity_not_certified",
            DropReason::FragmentRefused => "fragment_refused",
            DropReason::ReassemblyExpired => "reassembly_expired",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}
