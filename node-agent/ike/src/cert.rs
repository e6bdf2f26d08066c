//! X.509 certificates for IKEv2 authentication: chain validation against configured CAs
//! (RFC 5280 path validation by rustls-webpki), the peer identity read from the end-entity
//! certificate (x509-parser), the binding of the IKE ID to that certificate (RFC 4945 section
//! 3.1), CERTREQ data (RFC 7296 section 3.7), and our own certificate chain and key.
//!
//! No ASN.1 is written here: webpki validates, x509-parser reads names and keys.

use core::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use dmvpn_wire::ikev2::{IdType, Identification};
use ring::digest;
use ring::rand::SecureRandom;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter, KeyUsage,
    RequiredEkuNotFoundContext,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;

use crate::signature::{KeyError, KeyType, PublicKey, SigningKey};

/// Signature algorithms accepted on the certificates of a chain (not on AUTH payloads): the
/// ECDSA, Ed25519 and RSA (PKCS #1 v1.5 and PSS, 2048 bits or more) algorithms of webpki.
static CHAIN_ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// id-kp-ipsecIKE, 1.3.6.1.5.5.7.3.17 (RFC 4945 section 5.1.3.12), content octets.
const EKU_IPSEC_IKE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11];
/// anyExtendedKeyUsage, 2.5.29.37.0 (RFC 5280 section 4.2.1.12), content octets.
const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1 (RFC 5280 section 4.2.1.12), content octets.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-kp-clientAuth, 1.3.6.1.5.5.7.3.2 (RFC 5280 section 4.2.1.12), content octets.
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// The Extended Key Usage policy for IKE certificates: RFC 4945 section 5.1.3.12 (no EKU, or
/// one with id-kp-ipsecIKE or anyExtendedKeyUsage), widened to serverAuth and clientAuth,
/// which strongSwan (`pki --flag serverAuth`) and Windows-oriented CAs put on gateway
/// certificates and which strongSwan and Cisco IOS accept for IKE.
#[derive(Debug, Clone, Copy)]
struct IkeKeyUsage;

impl ExtendedKeyUsageValidator for IkeKeyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let allowed =
            [EKU_IPSEC_IKE, EKU_ANY, EKU_SERVER_AUTH, EKU_CLIENT_AUTH].map(KeyPurposeId::new);
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if allowed.contains(&id) {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        if present.is_empty() {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFoundContext(
                RequiredEkuNotFoundContext {
                    required: KeyUsage::required(EKU_IPSEC_IKE),
                    present,
                },
            ))
        }
    }
}

/// Why a certificate, a chain or an IKE ID was refused. Each variant is one counter label
/// ([`CertError::label`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// No certificate in PEM text, or PEM that does not decode.
    #[error("no PEM certificate found")]
    Pem,
    /// A certificate that webpki or x509-parser cannot read.
    #[error("malformed certificate")]
    Malformed,
    /// The validation time is past the end entity's or a CA's notAfter.
    #[error("certificate expired")]
    Expired,
    /// The validation time is before a certificate's notBefore.
    #[error("certificate not valid yet")]
    NotValidYet,
    /// No path from the end entity to a configured CA.
    #[error("certificate not issued by a trusted CA")]
    UnknownIssuer,
    /// A certificate in the chain has a signature that does not verify.
    #[error("certificate signature does not verify")]
    BadSignature,
    /// The Extended Key Usage does not allow IKE (RFC 4945 section 5.1.3.12).
    #[error("extended key usage does not allow IKE")]
    KeyUsage,
    /// Any other path validation failure (RFC 5280 section 6).
    #[error("certificate path invalid: {0}")]
    Path(webpki::Error),
    /// The end entity's key is not ECDSA P-256, ECDSA P-384 or Ed25519.
    #[error("certificate key is not ECDSA P-256, P-384 or Ed25519")]
    UnsupportedKey,
    /// The validation time is before 1970.
    #[error("validation time before the Unix epoch")]
    TimeBeforeEpoch,
    /// The IKE ID is of a type a certificate cannot vouch for (RFC 4945 section 3.1).
    #[error("IKE ID type {0:?} cannot be bound to a certificate")]
    IdTypeNotBindable(IdType),
    /// The IKE ID is not the subject nor a subjectAltName of the certificate (RFC 4945
    /// section 3.1).
    #[error("IKE ID {0:?} is not in the certificate")]
    IdNotInCertificate(IdType),
    /// Our private key is not the key of our certificate.
    #[error("private key does not match the certificate")]
    KeyNotCertified,
    /// Our private key did not load.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl CertError {
    /// A short stable name for counters.
    pub fn label(&self) -> &'static str {
        match self {
            CertError::Pem => "cert_pem",
            CertError::Malformed => "cert_malformed",
            CertError::Expired => "cert_expired",
            CertError::NotValidYet => "cert_not_valid_yet",
            CertError::UnknownIssuer => "cert_unknown_issuer",
            CertError::BadSignature => "cert_bad_signature",
            CertError::KeyUsage => "cert_key_usage",
            CertError::Path(_) => "cert_path",
            CertError::UnsupportedKey => "cert_unsupported_key",
            CertError::TimeBeforeEpoch => "cert_time",
            CertError::IdTypeNotBindable(_) => "id_type_not_bindable",
            CertError::IdNotInCertificate(_) => "id_not_in_certificate",
            CertError::KeyNotCertified => "key_not_certified",
            CertError::Key(_) => "key",
        }
    }
}

impl From<webpki::Error> for CertError {
    fn from(err: webpki::Error) -> Self {
        use webpki::Error as E;
        match err {
            E::BadDer | E::BadDerTime | E::TrailingData(_) | E::UnsupportedCertVersion => {
                CertError::Malformed
            }
            E::CertExpired { .. } => CertError::Expired,
            E::CertNotValidYet { .. } => CertError::NotValidYet,
            E::UnknownIssuer => CertError::UnknownIssuer,
            E::InvalidSignatureForPublicKey => CertError::BadSignature,
            E::RequiredEkuNotFoundContext(_) => CertError::KeyUsage,
            other => CertError::Path(other),
        }
    }
}

/// Every certificate (DER) of PEM text, in order (`-----BEGIN CERTIFICATE-----`, RFC 7468
/// section 5).
///
/// # Errors
/// [`CertError::Pem`] without any certificate or when a section does not decode.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .map(|cert| cert.map(|der| der.to_vec()).map_err(|_| CertError::Pem))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(CertError::Pem);
    }
    Ok(certs)
}

/// The public key of a certificate's SubjectPublicKeyInfo, if it signs IKE AUTH payloads.
fn public_key(cert: &X509Certificate<'_>) -> Result<PublicKey, CertError> {
    let spki = cert.public_key();
    let algorithm = &spki.algorithm;
    let key_type = if algorithm.algorithm == OID_SIG_ED25519 {
        KeyType::Ed25519
    } else if algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = algorithm
            .parameters
            .as_ref()
            .and_then(|params| params.as_oid().ok());
        match curve {
            Some(oid) if oid == OID_EC_P256 => KeyType::EcdsaP256,
            Some(oid) if oid == OID_NIST_EC_P384 => KeyType::EcdsaP384,
            _ => return Err(CertError::UnsupportedKey),
        }
    } else {
        return Err(CertError::UnsupportedKey);
    };
    Ok(PublicKey::new(
        key_type,
        spki.subject_public_key.data.to_vec(),
    ))
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(CertError::Malformed),
    }
}

/// The authenticated identity of a peer, read from its validated end-entity certificate:
/// what the engine reports so that NHRP binds tunnel and NBMA addresses to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject distinguished name, as RFC 4514 text.
    pub subject: String,
    /// The DER encoding of the subject Name, which an ID_DER_ASN1_DN must equal.
    pub subject_der: Vec<u8>,
    /// The iPAddress subjectAltNames (RFC 5280 section 4.2.1.6).
    pub ip_sans: Vec<IpAddr>,
    /// The dNSName subjectAltNames.
    pub dns_sans: Vec<String>,
    /// The rfc822Name subjectAltNames.
    pub email_sans: Vec<String>,
    /// The key that verifies the peer's AUTH payload.
    pub public_key: PublicKey,
}

impl PeerIdentity {
    /// Reads the identity of a DER certificate, without validating it (for our own
    /// certificate, which we trust).
    pub(crate) fn read(der: &[u8]) -> Result<Self, CertError> {
        Self::from_certificate(&parse(der)?)
    }

    /// Reads the identity from a certificate, without validating it.
    fn from_certificate(cert: &X509Certificate<'_>) -> Result<Self, CertError> {
        let mut identity = PeerIdentity {
            subject: cert.subject().to_string(),
            subject_der: cert.subject().as_raw().to_vec(),
            ip_sans: Vec::new(),
            dns_sans: Vec::new(),
            email_sans: Vec::new(),
            public_key: public_key(cert)?,
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|_| CertError::Malformed)?;
        for name in san.iter().flat_map(|ext| &ext.value.general_names) {
            match name {
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        identity.ip_sans.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        identity.ip_sans.push(IpAddr::from(v6));
                    }
                }
                GeneralName::DNSName(dns) => identity.dns_sans.push((*dns).to_owned()),
                GeneralName::RFC822Name(email) => identity.email_sans.push((*email).to_owned()),
                _ => {}
            }
        }
        Ok(identity)
    }

    /// Whether the certificate names `addr` as an iPAddress subjectAltName: the check NHRP
    /// makes before it accepts a registration for `addr` from this peer.
    pub fn owns_address(&self, addr: IpAddr) -> bool {
        self.ip_sans.contains(&addr)
    }

    /// Checks that the peer's IKE ID (IDi or IDr) is vouched for by the certificate (RFC
    /// 4945 section 3.1): ID_IPV4_ADDR and ID_IPV6_ADDR must be an iPAddress SAN
    /// (3.1.1), ID_FQDN a dNSName SAN compared without case (3.1.2), ID_RFC822_ADDR an
    /// rfc822Name SAN (3.1.3), ID_DER_ASN1_DN bitwise the subject (3.1.5).
    ///
    /// # Errors
    /// [`CertError::IdNotInCertificate`] when it is not, [`CertError::IdTypeNotBindable`]
    /// for ID_KEY_ID, ID_DER_ASN1_GN and unknown types.
    pub fn check_id(&self, id: &Identification<'_>) -> Result<(), CertError> {
        let bound = match id.id_type {
            IdType::Ipv4Addr => id
                .ipv4()
                .is_some_and(|ip| self.owns_address(IpAddr::V4(ip))),
            IdType::Ipv6Addr => id
                .ipv6()
                .is_some_and(|ip| self.owns_address(IpAddr::V6(ip))),
            IdType::Fqdn => id
                .text()
                .is_some_and(|fqdn| self.dns_sans.iter().any(|d| d.eq_ignore_ascii_case(fqdn))),
            IdType::Rfc822Addr => id
                .text()
                .is_some_and(|email| self.email_sans.iter().any(|e| e == email)),
            IdType::DerAsn1Dn => id.data == self.subject_der.as_slice(),
            other => return Err(CertError::IdTypeNotBindable(other)),
        };
        if bound {
            Ok(())
        } else {
            Err(CertError::IdNotInCertificate(id.id_type))
        }
    }
}

/// The configured certification authorities that peer certificates must chain to.
#[derive(Debug, Clone)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    certreq: Vec<u8>,
}

impl TrustStore {
    /// A store of the CA certificates (DER).
    ///
    /// # Errors
    /// [`CertError::Malformed`] when one does not parse.
    pub fn from_der<'a>(cas: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, CertError> {
        let mut anchors = Vec::new();
        let mut certreq = Vec::new();
        for der in cas {
            let cert = CertificateDer::from(der);
            let anchor = webpki::anchor_from_trusted_cert(&cert)?;
            anchors.push(anchor.to_owned());
            let parsed = parse(der)?;
            let spki = parsed.public_key().raw;
            certreq.extend_from_slice(
                digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, spki).as_ref(),
            );
        }
        Ok(TrustStore { anchors, certreq })
    }

    /// A store of every CA certificate of PEM text.
    ///
    /// # Errors
    /// [`CertError::Pem`] or [`CertError::Malformed`].
    pub fn from_pem(pem: &[u8]) -> Result<Self, CertError> {
        let certs = certificates_from_pem(pem)?;
        Self::from_der(certs.iter().map(Vec::as_slice))
    }

    /// The data of a CERTREQ payload of encoding 4 (X.509 signature) naming these CAs: the
    /// concatenated SHA-1 hashes of their SubjectPublicKeyInfo (RFC 7296 section 3.7).
    pub fn certreq_data(&self) -> &[u8] {
        &self.certreq
    }

    /// Validates a peer's end-entity certificate and the intermediate certificates it sent
    /// against the configured CAs at wall-clock time `now` (RFC 5280 section 6; the Extended
    /// Key Usage policy of RFC 4945 section 5.1.3.12, also accepting serverAuth and
    /// clientAuth), and returns the identity it certifies. Revocation is not checked.
    ///
    /// # Errors
    /// [`CertError::Malformed`], [`CertError::Expired`], [`CertError::NotValidYet`],
    /// [`CertError::UnknownIssuer`], [`CertError::BadSignature`], [`CertError::KeyUsage`],
    /// [`CertError::Path`], [`CertError::UnsupportedKey`] or [`CertError::TimeBeforeEpoch`].
    pub fn verify(
        &self,
        end_entity: &[u8],
        intermediates: &[&[u8]],
        now: SystemTime,
    ) -> Result<PeerIdentity, CertError> {
        let since_epoch = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| CertError::TimeBeforeEpoch)?;
        let ee_der = CertificateDer::from(end_entity);
        let ee = EndEntityCert::try_from(&ee_der)?;
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|&der| CertificateDer::from(der))
            .collect();
        ee.verify_for_usage(
            CHAIN_ALGORITHMS,
            &self.anchors,
            &intermediates,
            UnixTime::since_unix_epoch(since_epoch),
            IkeKeyUsage,
            None,
            None,
        )?;
        PeerIdentity::from_certificate(&parse(end_entity)?)
    }
}

/// Our certificate chain (end entity first, then intermediates, each sent in a CERT payload
/// of encoding 4, RFC 7296 section 3.6) and the private key of its end entity.
pub struct Credentials {
    key: SigningKey,
    chain: Vec<Vec<u8>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key)
            .field("certificates", &self.chain.len())
            .finish()
    }
}

impl Credentials {
    /// Credentials from a PEM certificate chain (end entity first) and a PEM PKCS #8 key,
    /// checking that the key is the end entity's.
    ///
    /// # Errors
    /// [`CertError::Pem`], [`CertError::Malformed`], [`CertError::UnsupportedKey`],
    /// [`CertError::Key`] or [`CertError::KeyNotCertified`].
    pub fn from_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Self, CertError> {
        let chain = certificates_from_pem(chain_pem)?;
        let key = SigningKey::from_pem(key_pem, rng)?;
        let certified = match chain.first() {
            Some(leaf) => public_key(&parse(leaf)?)?,
            None => return Err(CertError::Pem),
        };
        if certified != key.public_key() {
            return Err(CertError::KeyNotCertified);
        }
        Ok(Credentials { key, chain })
    }

    /// The key that signs our AUTH payloads.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Our certificates (DER), end entity first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The DER encoding of our end-entity certificate's subject Name: the data of our
    /// `ID_DER_ASN1_DN` (RFC 4945 section 3.1.5).
    ///
    /// # Errors
    /// [`CertError::Malformed`] if the certificate does not parse.
    pub fn subject_der(&self) -> Result<Vec<u8>, CertError> {
        let leaf = self.chain.first().ok_or(CertError::Pem)?;
        Ok(parse(leaf)?.subject().as_raw().to_vec())
    }
}
