//! Authentication of the IKE_AUTH exchange (RFC 7296 section 2.15): identities, the octets
//! each side signs, and the [`Authenticator`] trait through which a method computes and
//! checks the AUTH payload.
//!
//! [`psk::PskAuthenticator`] implements the shared-key MIC, [`signature::SignatureAuthenticator`]
//! digital signatures with X.509 certificates (RFC 7427, RFC 4945). Both get the same
//! [`AuthContext`]; a verified peer comes out as an [`AuthenticatedPeer`], with the identity its
//! certificate vouches for when there is one.

pub mod psk;
pub mod signature;

use core::fmt;
use core::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use dmvpn_wire::ikev2::{AuthMethod, IdType, Identification};

use crate::cert::{CertError, PeerIdentity};
use crate::crypto::prf::Prf;
use crate::error::DropReason;

/// An IKE identity (RFC 7296 section 3.5): the ID type and its data.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The ID type.
    pub id_type: IdType,
    /// The identification data.
    pub data: Vec<u8>,
}

impl Identity {
    /// `ID_IPV4_ADDR` / `ID_IPV6_ADDR` of `addr`: the default identity, as Cisco's `crypto
    /// isakmp identity address` and strongSwan's default.
    pub fn address(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => Identity {
                id_type: IdType::Ipv4Addr,
                data: a.octets().to_vec(),
            },
            IpAddr::V6(a) => Identity {
                id_type: IdType::Ipv6Addr,
                data: a.octets().to_vec(),
            },
        }
    }

    /// `ID_FQDN`.
    pub fn fqdn(name: &str) -> Self {
        Identity {
            id_type: IdType::Fqdn,
            data: name.as_bytes().to_vec(),
        }
    }

    /// `ID_DER_ASN1_DN`: the DER encoding of a distinguished name, as a certificate's subject
    /// (RFC 4945 section 3.1.5).
    pub fn der_asn1_dn(der: &[u8]) -> Self {
        Identity {
            id_type: IdType::DerAsn1Dn,
            data: der.to_vec(),
        }
    }

    /// `ID_KEY_ID`: opaque bytes.
    pub fn key_id(bytes: &[u8]) -> Self {
        Identity {
            id_type: IdType::KeyId,
            data: bytes.to_vec(),
        }
    }

    /// The identity of a received ID payload.
    pub fn from_wire(id: &Identification<'_>) -> Self {
        Identity {
            id_type: id.id_type,
            data: id.data.to_vec(),
        }
    }

    /// The ID payload body.
    pub fn wire(&self) -> Identification<'_> {
        Identification {
            id_type: self.id_type,
            data: &self.data,
        }
    }

    /// The address of an address identity.
    pub fn ip(&self) -> Option<IpAddr> {
        let id = self.wire();
        id.ipv4()
            .map(IpAddr::V4)
            .or_else(|| id.ipv6().map(IpAddr::V6))
    }

    /// RestOfInitIDPayload / RestOfRespIDPayload: the ID payload body, type and RESERVED
    /// included (RFC 7296 section 2.15).
    pub(crate) fn rest_of_payload(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.data.len());
        v.extend_from_slice(&[self.id_type.into(), 0, 0, 0]);
        v.extend_from_slice(&self.data);
        v
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.ip() {
            return write!(f, "{ip}");
        }
        match self.wire().text() {
            Some(t) => f.write_str(t),
            None => {
                f.write_str("0x")?;
                self.data.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}:{self}", self.id_type)
    }
}

/// What an [`Authenticator`] needs to compute or check one AUTH payload.
#[derive(Debug, Clone, Copy)]
pub struct AuthContext<'a> {
    /// The IKE SA's PRF.
    pub prf: Prf,
    /// The signed octets (RFC 7296 section 2.15): the sender's IKE_SA_INIT message, the
    /// peer's nonce, and prf(SK_p, the sender's ID payload body).
    pub octets: &'a [u8],
    /// The identity of the side whose AUTH this is.
    pub signer: &'a Identity,
    /// The identity of the other side, once known (the initiator does not know the
    /// responder's before its answer).
    pub other: Option<&'a Identity>,
    /// The peer's underlay address, for per-address keys.
    pub peer_addr: IpAddr,
    /// The engine's time of the exchange, which a certificate check turns into wall-clock
    /// time.
    pub now: Instant,
    /// When verifying: the data of the peer's CERT payloads of encoding 4 (X.509 Certificate -
    /// Signature, RFC 7296 section 3.6), in order: its end-entity certificate first. Empty when
    /// signing.
    pub certificates: &'a [&'a [u8]],
}

/// A peer that proved its identity in IKE_AUTH (RFC 7296 section 2.15): its IKE ID and, with
/// certificate authentication, what its validated certificate says (subject, IP and DNS
/// subjectAltNames). This is what NHRP checks a registration against (issue 4, identity
/// binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedPeer {
    /// The IKE ID (IDi or IDr) the peer authenticated as.
    pub id: Identity,
    /// The identity of its validated end-entity certificate, bound to `id` (RFC 4945 section
    /// 3.1); `None` with PSK.
    pub certificate: Option<Arc<PeerIdentity>>,
}

impl AuthenticatedPeer {
    /// Whether the peer may speak for `addr`: an iPAddress subjectAltName of its certificate,
    /// or without a certificate its address IKE ID.
    pub fn owns_address(&self, addr: IpAddr) -> bool {
        match &self.certificate {
            Some(cert) => cert.owns_address(addr),
            None => self.id.ip() == Some(addr),
        }
    }
}

impl PartialEq<Identity> for AuthenticatedPeer {
    fn eq(&self, other: &Identity) -> bool {
        self.id == *other
    }
}

impl fmt::Display for AuthenticatedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.certificate {
            Some(cert) => write!(f, "{} ({})", self.id, cert.subject),
            None => self.id.fmt(f),
        }
    }
}

/// Why an AUTH payload could not be made or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential is configured for this peer.
    #[error("no credential for this peer")]
    NoCredential,
    /// The AUTH method is not the one configured for the peer.
    #[error("unexpected authentication method")]
    WrongMethod,
    /// The AUTH data does not verify.
    #[error("authentication data does not verify")]
    Mismatch,
    /// Signature authentication without a CERT payload of encoding 4 from the peer (we do not
    /// keep peer certificates locally).
    #[error("no certificate from the peer")]
    MissingCertificate,
    /// The peer's certificate chain was refused, or does not vouch for its IKE ID.
    #[error(transparent)]
    Certificate(#[from] CertError),
}

impl AuthError {
    /// The drop reason this refusal is counted under.
    pub fn drop_reason(&self) -> DropReason {
        match self {
            AuthError::Certificate(
                CertError::IdNotInCertificate(_) | CertError::IdTypeNotBindable(_),
            ) => DropReason::IdentityNotCertified,
            AuthError::Certificate(_) | AuthError::MissingCertificate => {
                DropReason::CertificateRefused
            }
            AuthError::NoCredential | AuthError::WrongMethod | AuthError::Mismatch => {
                DropReason::AuthenticationFailed
            }
        }
    }
}

/// An authentication method of IKE_AUTH (RFC 7296 section 2.15; RFC 7427 for signatures).
pub trait Authenticator: fmt::Debug + Send + Sync {
    /// Computes our AUTH payload: its method and data. `ctx.signer` is our identity.
    ///
    /// # Errors
    /// [`AuthError::NoCredential`] when nothing is configured for the peer.
    fn sign(&self, ctx: &AuthContext<'_>) -> Result<(AuthMethod, Vec<u8>), AuthError>;

    /// Checks the peer's AUTH payload. `ctx.signer` is the peer's identity. Returns the
    /// identity of the peer's certificate when the method uses one.
    ///
    /// # Errors
    /// [`AuthError`] when the payload does not authenticate the peer.
    fn verify(
        &self,
        ctx: &AuthContext<'_>,
        method: AuthMethod,
        data: &[u8],
    ) -> Result<Option<PeerIdentity>, AuthError>;

    /// Our certificates (DER, end entity first), each sent in a CERT payload of encoding 4
    /// in IKE_AUTH (RFC 7296 section 3.6); none by default.
    fn certificates(&self) -> &[Vec<u8>] {
        &[]
    }

    /// The data of the CERTREQ payload (encoding 4: SHA-1 hashes of trusted CA public keys,
    /// RFC 7296 section 3.7) we send in the IKE_SA_INIT response and the IKE_AUTH request;
    /// `None` (no CERTREQ) by default.
    fn certificate_request(&self) -> Option<&[u8]> {
        None
    }

    /// Checks at configuration time that we can authenticate as `own`: with certificates,
    /// that our certificate vouches for it (RFC 4945 section 3.1). Accepts anything by default.
    ///
    /// # Errors
    /// [`AuthError::Certificate`] when our certificate does not name `own`.
    fn check_own_identity(&self, own: &Identity) -> Result<(), AuthError> {
        let _ = own;
        Ok(())
    }
}
