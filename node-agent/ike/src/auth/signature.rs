//! Digital-signature authentication with X.509 certificates (RFC 7427 section 3, AUTH method
//! 14; RFC 7296 sections 3.6, 3.7; RFC 4945 section 3.1): we sign the signed octets with the
//! key of our certificate and send our chain in CERT payloads; a peer is verified by its chain
//! against the trust store at wall-clock time, the binding of its IKE ID to the end-entity
//! certificate, and its signature.
//!
//! The engine's time is an [`Instant`]; certificate validity is in wall-clock time. A
//! [`WallClock`] anchor, taken by the driver when it builds the authenticator, maps one onto
//! the other, so no clock is read here.
//!
//! The one randomness not injected: ECDSA signing takes ring's `SystemRandom`, as
//! Diffie-Hellman keys do (see `crypto::random`), because ring only signs with its own sealed
//! generator. Ed25519 signatures are deterministic.

use core::fmt;
use std::time::{Instant, SystemTime};

use dmvpn_wire::ikev2::AuthMethod;
use ring::rand::SystemRandom;

use super::{AuthContext, AuthError, Authenticator, Identity};
use crate::cert::{CertError, Credentials, PeerIdentity, TrustStore};
use crate::signature;

/// The wall-clock time of one engine instant: certificate validity of the engine's `now` is
/// checked at `system + (now - instant)` (or before `system` for an earlier `now`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// An engine instant.
    pub instant: Instant,
    /// The wall-clock time at `instant`.
    pub system: SystemTime,
}

impl WallClock {
    /// The wall-clock time at the engine's `now`; saturates at the ends of `SystemTime`.
    pub fn at(&self, now: Instant) -> SystemTime {
        if now >= self.instant {
            let ahead = now.duration_since(self.instant);
            self.system.checked_add(ahead).unwrap_or(self.system)
        } else {
            let behind = self.instant.duration_since(now);
            self.system.checked_sub(behind).unwrap_or(self.system)
        }
    }
}

/// Certificate authentication: our credentials (chain and key), the CAs peers must chain to,
/// and the wall-clock anchor.
pub struct SignatureAuthenticator {
    credentials: Credentials,
    trust: TrustStore,
    clock: WallClock,
    rng: SystemRandom,
}

impl fmt::Debug for SignatureAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureAuthenticator")
            .field("credentials", &self.credentials)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl SignatureAuthenticator {
    /// An authenticator signing with `credentials` and accepting peers whose chain reaches a
    /// CA of `trust`, with validity checked against `clock`.
    pub fn new(credentials: Credentials, trust: TrustStore, clock: WallClock) -> Self {
        SignatureAuthenticator {
            credentials,
            trust,
            clock,
            rng: SystemRandom::new(),
        }
    }

    /// Our certificate's subject as an `ID_DER_ASN1_DN` identity, for configurations that
    /// identify by distinguished name (RFC 4945 section 3.1.5).
    ///
    /// # Errors
    /// [`CertError::Malformed`] if our certificate does not parse.
    pub fn subject_identity(&self) -> Result<Identity, CertError> {
        self.credentials
            .subject_der()
            .map(|der| Identity::der_asn1_dn(&der))
    }
}

impl Authenticator for SignatureAuthenticator {
    fn sign(&self, ctx: &AuthContext<'_>) -> Result<(AuthMethod, Vec<u8>), AuthError> {
        let data = signature::sign(self.credentials.key(), ctx.octets, &self.rng)
            .map_err(|_| AuthError::NoCredential)?;
        Ok((AuthMethod::DigitalSignature, data))
    }

    fn verify(
        &self,
        ctx: &AuthContext<'_>,
        method: AuthMethod,
        data: &[u8],
    ) -> Result<Option<PeerIdentity>, AuthError> {
        if method != AuthMethod::DigitalSignature {
            return Err(AuthError::WrongMethod);
        }
        let (end_entity, intermediates) = ctx
            .certificates
            .split_first()
            .ok_or(AuthError::MissingCertificate)?;
        let peer = self
            .trust
            .verify(end_entity, intermediates, self.clock.at(ctx.now))?;
        peer.check_id(&ctx.signer.wire())?;
        signature::verify(&peer.public_key, method, data, ctx.octets)
            .map_err(|_| AuthError::Mismatch)?;
        Ok(Some(peer))
    }

    fn certificates(&self) -> &[Vec<u8>] {
        self.credentials.chain()
    }

    fn certificate_request(&self) -> Option<&[u8]> {
        Some(self.trust.certreq_data())
    }

    fn check_own_identity(&self, own: &Identity) -> Result<(), AuthError> {
        let leaf = self
            .credentials
            .chain()
            .first()
            .ok_or(AuthError::NoCredential)?;
        PeerIdentity::read(leaf)?.check_id(&own.wire())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wall_clock_follows_the_engine_clock_both_ways() {
        let t0 = Instant::now();
        let clock = WallClock {
            instant: t0 + Duration::from_secs(100),
            system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000),
        };
        let later = t0 + Duration::from_secs(160);
        assert_eq!(
            clock.at(later),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_060)
        );
        assert_eq!(
            clock.at(t0),
            SystemTime::UNIX_EPOCH + Duration::from_secs(900)
        );
    }
}
