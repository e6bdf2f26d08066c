//! Pre-shared key authentication (RFC 7296 section 2.15):
//! `AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)`, with the key looked
//! up per peer identity, then per peer address, then the default.

use core::fmt;
use core::net::IpAddr;
use std::collections::HashMap;

use dmvpn_wire::ikev2::AuthMethod;

use super::{AuthContext, AuthError, Authenticator, Identity};
use crate::cert::PeerIdentity;
use crate::crypto::Secret;

/// The pad of the PSK key derivation (RFC 7296 section 2.15), 17 ASCII bytes.
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// A pre-shared key: `Debug` prints `<redacted>`, the bytes are zeroed on drop.
#[derive(Clone)]
pub struct Psk(Secret);

impl Psk {
    /// A key from its bytes (RFC 7296 section 2.15 allows any octets; a text key is its
    /// UTF-8 bytes).
    pub fn new(bytes: &[u8]) -> Self {
        Psk(Secret::new(bytes.to_vec()))
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

/// PSK authentication with per-peer keys.
#[derive(Debug, Clone, Default)]
pub struct PskAuthenticator {
    /// The key for peers without a specific one.
    pub default: Option<Psk>,
    /// Keys by the peer's IKE identity.
    pub by_identity: HashMap<Identity, Psk>,
    /// Keys by the peer's underlay address.
    pub by_address: HashMap<IpAddr, Psk>,
}

impl PskAuthenticator {
    /// One key for every peer.
    pub fn new(psk: &[u8]) -> Self {
        PskAuthenticator {
            default: Some(Psk::new(psk)),
            ..Default::default()
        }
    }

    fn key(&self, peer: Option<&Identity>, addr: IpAddr) -> Result<&Psk, AuthError> {
        peer.and_then(|id| self.by_identity.get(id))
            .or_else(|| self.by_address.get(&addr))
            .or(self.default.as_ref())
            .ok_or(AuthError::NoCredential)
    }

    fn mic(ctx: &AuthContext<'_>, psk: &Psk) -> Secret {
        let k = ctx.prf.compute(psk.0.expose(), &[KEY_PAD]);
        ctx.prf.compute(k.expose(), &[ctx.octets])
    }
}

impl Authenticator for PskAuthenticator {
    fn sign(&self, ctx: &AuthContext<'_>) -> Result<(AuthMethod, Vec<u8>), AuthError> {
        let psk = self.key(ctx.other, ctx.peer_addr)?;
        Ok((
            AuthMethod::SharedKeyMic,
            Self::mic(ctx, psk).expose().to_vec(),
        ))
    }

    fn verify(
        &self,
        ctx: &AuthContext<'_>,
        method: AuthMethod,
        data: &[u8],
    ) -> Result<Option<PeerIdentity>, AuthError> {
        if method != AuthMethod::SharedKeyMic {
            return Err(AuthError::WrongMethod);
        }
        let psk = self.key(Some(ctx.signer), ctx.peer_addr)?;
        let k = ctx.prf.compute(psk.0.expose(), &[KEY_PAD]);
        if ctx.prf.verify(k.expose(), ctx.octets, data) {
            Ok(None)
        } else {
            Err(AuthError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prf::Prf;
    use core::net::Ipv4Addr;

    #[test]
    fn mic_is_the_double_prf_and_per_peer_keys_win() {
        let me = Identity::fqdn("hub");
        let peer = Identity::key_id(b"spoke-1");
        let addr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
        let mut a = PskAuthenticator::new(b"default");
        a.by_identity
            .insert(peer.clone(), Psk::new(b"per-identity"));
        let ctx = AuthContext {
            prf: Prf::HmacSha256,
            octets: b"octets",
            signer: &me,
            other: Some(&peer),
            peer_addr: addr,
            now: std::time::Instant::now(),
            certificates: &[],
        };
        let (m, data) = a.sign(&ctx).unwrap();
        assert_eq!(m, AuthMethod::SharedKeyMic);
        let k = Prf::HmacSha256.compute(b"per-identity", &[b"Key Pad for IKEv2"]);
        assert_eq!(
            data,
            Prf::HmacSha256.compute(k.expose(), &[b"octets"]).expose()
        );
        // The peer signs with the same key: verification by its identity.
        let vctx = AuthContext {
            signer: &peer,
            other: Some(&me),
            ..ctx
        };
        assert_eq!(a.verify(&vctx, m, &data), Ok(None));
        let mut bad = data.clone();
        bad[0] ^= 1;
        assert_eq!(a.verify(&vctx, m, &bad), Err(AuthError::Mismatch));
        assert_eq!(
            a.verify(&vctx, AuthMethod::DigitalSignature, &data),
            Err(AuthError::WrongMethod)
        );
        assert_eq!(
            PskAuthenticator::default().sign(&ctx),
            Err(AuthError::NoCredential)
        );
        assert_eq!(format!("{a:?}").matches("redacted").count(), 2);
        assert!(!format!("{a:?}").contains("default\""));
    }
}
