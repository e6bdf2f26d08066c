//! Authentication of the IKE_AUTH exchange (RFC 7296 section 2.15): identities, the octets
//! each side signs, and the [`Authenticator`] trait through which a method computes and
//! checks the AUTH payload.
//!
//! [`psk::PskAuthenticator`] implements the shared-key MIC. Digital signatures (RFC 7427) plug
//! in as another implementation of the same trait (in `signature.rs` / `cert.rs`): it gets the
//! same [`AuthContext`] and returns its own method and data.

pub mod psk;

use core::fmt;
use core::net::IpAddr;

use dmvpn_wire::ikev2::{AuthMethod, IdType, Identification};

use crate::crypto::prf::Prf;

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
}

/// Why an AUTH payload could not be made or was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
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
}

/// An authentication method of IKE_AUTH (RFC 7296 section 2.15; RFC 7427 for signatures).
pub trait Authenticator: fmt::Debug + Send + Sync {
    /// Computes our AUTH payload: its method and data. `ctx.signer` is our identity.
    ///
    /// # Errors
    /// [`AuthError::NoCredential`] when nothing is configured for the peer.
    fn sign(&self, ctx: &AuthContext<'_>) -> Result<(AuthMethod, Vec<u8>), AuthError>;

    /// Checks the peer's AUTH payload. `ctx.signer` is the peer's identity.
    ///
    /// # Errors
    /// [`AuthError`] when the payload does not authenticate the peer.
    fn verify(
        &self,
        ctx: &AuthContext<'_>,
        method: AuthMethod,
        data: &[u8],
    ) -> Result<(), AuthError>;
}
