//! Digital Signature authentication (RFC 7427 section 3, AUTH method 14) with ECDSA (P-256,
//! P-384) and Ed25519 (RFC 8420), and the SIGNATURE_HASH_ALGORITHMS notification (RFC 7427
//! section 4).
//!
//! The authentication data is `ASN.1 length (1 octet) | AlgorithmIdentifier DER | signature`.
//! The AlgorithmIdentifier is compared byte for byte against the fixed objects of RFC 7427
//! Appendix A and RFC 8420 Appendix A: nothing else is parsed as ASN.1, and any other object is
//! refused with [`SignatureError::UnknownAlgorithm`].
//!
//! The signed octets (`InitiatorSignedOctets` / `ResponderSignedOctets`, RFC 7296 section
//! 2.15) are the engine's to compute; this module signs and verifies them.

use core::fmt;

use dmvpn_wire::ikev2::{AuthMethod, Authentication};
use ring::rand::SecureRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// The one-octet length and the AlgorithmIdentifier of ecdsa-with-SHA256 (OID
/// 1.2.840.10045.4.3.2, parameters absent), from RFC 7427 Appendix A.3.
const ECDSA_WITH_SHA256: &[u8] = &[
    0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// The one-octet length and the AlgorithmIdentifier of ecdsa-with-SHA384 (OID
/// 1.2.840.10045.4.3.3, parameters absent), from RFC 7427 Appendix A.3.
const ECDSA_WITH_SHA384: &[u8] = &[
    0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];

/// The one-octet length and the AlgorithmIdentifier of id-Ed25519 (OID 1.3.101.112,
/// parameters absent), from RFC 8420 Appendix A.1.
const ID_ED25519: &[u8] = &[0x07, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

/// A signature algorithm of RFC 7427 authentication data that this crate signs and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ecdsa-with-SHA256; the signature is a DER `ECDSA-Sig-Value` (RFC 7427 Appendix A.3).
    EcdsaWithSha256,
    /// ecdsa-with-SHA384; the signature is a DER `ECDSA-Sig-Value` (RFC 7427 Appendix A.3).
    EcdsaWithSha384,
    /// Ed25519 over the whole signed octets, hash "Identity" (RFC 8420 section 3).
    Ed25519,
}

impl SignatureAlgorithm {
    /// Every algorithm, in our order of preference.
    pub const ALL: [SignatureAlgorithm; 3] = [
        SignatureAlgorithm::Ed25519,
        SignatureAlgorithm::EcdsaWithSha256,
        SignatureAlgorithm::EcdsaWithSha384,
    ];

    /// The length octet and the DER AlgorithmIdentifier that open the authentication data.
    fn auth_data_prefix(self) -> &'static [u8] {
        match self {
            SignatureAlgorithm::EcdsaWithSha256 => ECDSA_WITH_SHA256,
            SignatureAlgorithm::EcdsaWithSha384 => ECDSA_WITH_SHA384,
            SignatureAlgorithm::Ed25519 => ID_ED25519,
        }
    }

    /// The DER AlgorithmIdentifier of this algorithm (RFC 7427 Appendix A, RFC 8420
    /// Appendix A).
    pub fn algorithm_identifier(self) -> &'static [u8] {
        &self.auth_data_prefix()[1..]
    }

    /// The algorithm whose AlgorithmIdentifier is exactly `der`, if we support it.
    pub fn from_algorithm_identifier(der: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.algorithm_identifier() == der)
    }

    /// The hash this algorithm uses, as announced in SIGNATURE_HASH_ALGORITHMS (RFC 7427
    /// section 4; Identity for Ed25519, RFC 8420 section 2).
    pub fn hash(self) -> HashAlgorithm {
        match self {
            SignatureAlgorithm::EcdsaWithSha256 => HashAlgorithm::Sha2_256,
            SignatureAlgorithm::EcdsaWithSha384 => HashAlgorithm::Sha2_384,
            SignatureAlgorithm::Ed25519 => HashAlgorithm::Identity,
        }
    }

    /// The ring verification algorithm for this signature algorithm over `key`, or `None`
    /// when they do not go together.
    fn verification(self, key: KeyType) -> Option<&'static dyn signature::VerificationAlgorithm> {
        Some(match (self, key) {
            (SignatureAlgorithm::EcdsaWithSha256, KeyType::EcdsaP256) => {
                &signature::ECDSA_P256_SHA256_ASN1
            }
            (SignatureAlgorithm::EcdsaWithSha256, KeyType::EcdsaP384) => {
                &signature::ECDSA_P384_SHA256_ASN1
            }
            (SignatureAlgorithm::EcdsaWithSha384, KeyType::EcdsaP256) => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            (SignatureAlgorithm::EcdsaWithSha384, KeyType::EcdsaP384) => {
                &signature::ECDSA_P384_SHA384_ASN1
            }
            (SignatureAlgorithm::Ed25519, KeyType::Ed25519) => &signature::ED25519,
            _ => return None,
        })
    }
}

/// A hash algorithm of the SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 section 4; IANA
/// "IKEv2 Hash Algorithms"), an open set that keeps unknown values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (value 1).
    Sha1,
    /// SHA2-256 (value 2).
    Sha2_256,
    /// SHA2-384 (value 3).
    Sha2_384,
    /// SHA2-512 (value 4).
    Sha2_512,
    /// Identity (value 5): the signature algorithm takes the whole message (RFC 8420 section
    /// 2).
    Identity,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for HashAlgorithm {
    fn from(value: u16) -> Self {
        match value {
            1 => HashAlgorithm::Sha1,
            2 => HashAlgorithm::Sha2_256,
            3 => HashAlgorithm::Sha2_384,
            4 => HashAlgorithm::Sha2_512,
            5 => HashAlgorithm::Identity,
            other => HashAlgorithm::Unknown(other),
        }
    }
}

impl From<HashAlgorithm> for u16 {
    fn from(hash: HashAlgorithm) -> Self {
        match hash {
            HashAlgorithm::Sha1 => 1,
            HashAlgorithm::Sha2_256 => 2,
            HashAlgorithm::Sha2_384 => 3,
            HashAlgorithm::Sha2_512 => 4,
            HashAlgorithm::Identity => 5,
            HashAlgorithm::Unknown(other) => other,
        }
    }
}

/// The hashes we verify signatures with, in the order we announce them in our
/// SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 section 4).
pub const SUPPORTED_HASHES: [HashAlgorithm; 3] = [
    HashAlgorithm::Sha2_256,
    HashAlgorithm::Sha2_384,
    HashAlgorithm::Identity,
];

/// The notification data of SIGNATURE_HASH_ALGORITHMS: each hash as two octets in network
/// order (RFC 7427 section 4).
pub fn encode_hash_algorithms(hashes: &[HashAlgorithm]) -> Vec<u8> {
    hashes
        .iter()
        .flat_map(|&hash| u16::from(hash).to_be_bytes())
        .collect()
}

/// The hashes a peer announced in SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4), unknown
/// values kept.
///
/// # Errors
/// [`SignatureError::MalformedHashList`] when the data is not a whole number of two-octet
/// values.
pub fn decode_hash_algorithms(data: &[u8]) -> Result<Vec<HashAlgorithm>, SignatureError> {
    let (pairs, rest) = data.as_chunks::<2>();
    if !rest.is_empty() {
        return Err(SignatureError::MalformedHashList);
    }
    Ok(pairs
        .iter()
        .map(|&pair| HashAlgorithm::from(u16::from_be_bytes(pair)))
        .collect())
}

/// The first of `ours` (in our order of preference) that the peer also announced, if any
/// (RFC 7427 section 4: the signer picks a hash from the peer's list).
pub fn pick_hash(ours: &[HashAlgorithm], theirs: &[HashAlgorithm]) -> Option<HashAlgorithm> {
    ours.iter().copied().find(|hash| theirs.contains(hash))
}

/// The kind of a public or private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519 (RFC 8032).
    Ed25519,
}

/// A public key that verifies AUTH signatures, taken from a peer's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    key_type: KeyType,
    /// The uncompressed EC point (SEC 1) or the 32 Ed25519 octets.
    bytes: Vec<u8>,
}

impl PublicKey {
    /// A public key of `key_type` from the contents of a SubjectPublicKeyInfo's BIT STRING (an
    /// uncompressed point for ECDSA, RFC 5480 section 2.2; 32 octets for Ed25519, RFC 8410
    /// section 4). The bytes are checked when a signature is verified.
    pub fn new(key_type: KeyType, bytes: Vec<u8>) -> Self {
        PublicKey { key_type, bytes }
    }

    /// The kind of key.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The encoded key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Why a signature could not be made or was refused, or a key was not loaded. Each variant
/// is one counter label ([`SignatureError::label`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The AUTH method is not Digital Signature (RFC 7427 section 3).
    #[error("AUTH method {0:?} is not Digital Signature (14)")]
    NotDigitalSignature(AuthMethod),
    /// The AUTH data ends inside the AlgorithmIdentifier its length octet announces.
    #[error("AUTH data shorter than its AlgorithmIdentifier length")]
    Truncated,
    /// The AlgorithmIdentifier is none of the fixed objects we support.
    #[error("unsupported AlgorithmIdentifier in AUTH data")]
    UnknownAlgorithm,
    /// The signature algorithm does not go with the certificate's key.
    #[error("{algorithm:?} signature with a {key:?} key")]
    KeyMismatch {
        /// The algorithm the AUTH data names.
        algorithm: SignatureAlgorithm,
        /// The key of the certificate.
        key: KeyType,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The signing operation failed (the random generator failed).
    #[error("signing failed")]
    Signing,
    /// SIGNATURE_HASH_ALGORITHMS data of an odd length (RFC 7427 section 4).
    #[error("SIGNATURE_HASH_ALGORITHMS data is not a list of 2-octet values")]
    MalformedHashList,
}

impl SignatureError {
    /// A short stable name for counters.
    pub fn label(&self) -> &'static str {
        match self {
            SignatureError::NotDigitalSignature(_) => "auth_method",
            SignatureError::Truncated => "auth_truncated",
            SignatureError::UnknownAlgorithm => "auth_algorithm",
            SignatureError::KeyMismatch { .. } => "auth_key_mismatch",
            SignatureError::BadSignature => "auth_bad_signature",
            SignatureError::Signing => "auth_signing",
            SignatureError::MalformedHashList => "hash_list_malformed",
        }
    }
}

/// Why a private key was not loaded. No variant carries any of the key's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PEM text has no private key, or does not decode.
    #[error("no PEM private key found")]
    Pem,
    /// A SEC 1 or PKCS #1 key: only PKCS #8 is read.
    #[error("private key is not PKCS #8 (convert it: `openssl pkcs8 -topk8 -nocrypt`)")]
    NotPkcs8,
    /// A PKCS #8 key that is not ECDSA P-256, ECDSA P-384 or Ed25519.
    #[error("private key is not ECDSA P-256, ECDSA P-384 or Ed25519")]
    Unsupported,
}

enum Inner {
    Ecdsa(EcdsaKeyPair, SignatureAlgorithm, KeyType),
    Ed25519(Ed25519KeyPair),
}

/// Our private key for Digital Signature authentication (RFC 7427 section 3); its Debug shows
/// the algorithm and never the key.
pub struct SigningKey {
    inner: Inner,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// A key from a DER PKCS #8 document (RFC 5958): ECDSA P-256 (signs ecdsa-with-SHA256),
    /// ECDSA P-384 (signs ecdsa-with-SHA384) or Ed25519 (v1 or v2 documents). `rng` is used
    /// by ring to check the ECDSA key.
    ///
    /// # Errors
    /// [`KeyError::Unsupported`] for any other key or a malformed document.
    pub fn from_pkcs8(der: &[u8], rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        let ecdsa = [
            (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                SignatureAlgorithm::EcdsaWithSha256,
                KeyType::EcdsaP256,
            ),
            (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                SignatureAlgorithm::EcdsaWithSha384,
                KeyType::EcdsaP384,
            ),
        ];
        for (ring_alg, alg, key_type) in ecdsa {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(ring_alg, der, rng) {
                return Ok(SigningKey {
                    inner: Inner::Ecdsa(pair, alg, key_type),
                });
            }
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| SigningKey {
                inner: Inner::Ed25519(pair),
            })
            .map_err(|_| KeyError::Unsupported)
    }

    /// A key from the first private key of PEM text (`-----BEGIN PRIVATE KEY-----`, RFC 7468
    /// section 10), as [`SigningKey::from_pkcs8`].
    ///
    /// # Errors
    /// [`KeyError::Pem`] without a private key, [`KeyError::NotPkcs8`] for `EC PRIVATE KEY`
    /// or `RSA PRIVATE KEY` sections, or the errors of [`SigningKey::from_pkcs8`].
    pub fn from_pem(pem: &[u8], rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        // The PEM error could quote a line of the key: it is dropped, not wrapped.
        match PrivateKeyDer::from_pem_slice(pem).map_err(|_| KeyError::Pem)? {
            PrivateKeyDer::Pkcs8(der) => Self::from_pkcs8(der.secret_pkcs8_der(), rng),
            _ => Err(KeyError::NotPkcs8),
        }
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match &self.inner {
            Inner::Ecdsa(_, alg, _) => *alg,
            Inner::Ed25519(_) => SignatureAlgorithm::Ed25519,
        }
    }

    /// The public half, to check it against our certificate.
    pub fn public_key(&self) -> PublicKey {
        match &self.inner {
            Inner::Ecdsa(pair, _, key_type) => {
                PublicKey::new(*key_type, pair.public_key().as_ref().to_vec())
            }
            Inner::Ed25519(pair) => {
                PublicKey::new(KeyType::Ed25519, pair.public_key().as_ref().to_vec())
            }
        }
    }
}

/// Signs `signed_octets` and returns the authentication data of an AUTH payload of method 14:
/// length octet, AlgorithmIdentifier and signature (RFC 7427 section 3).
///
/// `rng` supplies the ECDSA nonce (ring derives it from the key, the message and these random
/// bytes); Ed25519 is deterministic and does not use it.
///
/// # Errors
/// [`SignatureError::Signing`] when the random generator fails.
pub fn sign(
    key: &SigningKey,
    signed_octets: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, SignatureError> {
    let prefix = key.algorithm().auth_data_prefix();
    let mut data = prefix.to_vec();
    match &key.inner {
        Inner::Ecdsa(pair, _, _) => {
            let sig = pair
                .sign(rng, signed_octets)
                .map_err(|_| SignatureError::Signing)?;
            data.extend_from_slice(sig.as_ref());
        }
        Inner::Ed25519(pair) => data.extend_from_slice(pair.sign(signed_octets).as_ref()),
    }
    Ok(data)
}

/// Verifies the AUTH payload (`method`, `auth_data`) over `signed_octets` with the peer
/// certificate's key (RFC 7427 section 3), and returns the algorithm it used.
///
/// # Errors
/// [`SignatureError::NotDigitalSignature`] unless `method` is 14,
/// [`SignatureError::Truncated`], [`SignatureError::UnknownAlgorithm`],
/// [`SignatureError::KeyMismatch`] or [`SignatureError::BadSignature`].
pub fn verify(
    key: &PublicKey,
    method: AuthMethod,
    auth_data: &[u8],
    signed_octets: &[u8],
) -> Result<SignatureAlgorithm, SignatureError> {
    let auth = Authentication {
        method,
        data: auth_data,
    };
    if method != AuthMethod::DigitalSignature {
        return Err(SignatureError::NotDigitalSignature(method));
    }
    let parts = auth
        .digital_signature()
        .map_err(|_| SignatureError::Truncated)?;
    let algorithm = SignatureAlgorithm::from_algorithm_identifier(parts.algorithm)
        .ok_or(SignatureError::UnknownAlgorithm)?;
    let ring_alg = algorithm
        .verification(key.key_type)
        .ok_or(SignatureError::KeyMismatch {
            algorithm,
            key: key.key_type,
        })?;
    signature::UnparsedPublicKey::new(ring_alg, &key.bytes)
        .verify(signed_octets, parts.signature)
        .map_err(|_| SignatureError::BadSignature)?;
    Ok(algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn key(alg: &'static signature::EcdsaSigningAlgorithm) -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        SigningKey::from_pkcs8(pkcs8.as_ref(), &rng).unwrap()
    }

    fn ed25519() -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        SigningKey::from_pkcs8(pkcs8.as_ref(), &rng).unwrap()
    }

    fn all_keys() -> [SigningKey; 3] {
        [
            key(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
            key(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
            ed25519(),
        ]
    }

    #[test]
    fn sign_then_verify_each_key() {
        let rng = SystemRandom::new();
        let msg = b"InitiatorSignedOctets";
        for key in all_keys() {
            let data = sign(&key, msg, &rng).unwrap();
            let alg = key.algorithm();
            assert_eq!(usize::from(data[0]), alg.algorithm_identifier().len());
            assert_eq!(&data[1..=usize::from(data[0])], alg.algorithm_identifier());
            let public = key.public_key();
            assert_eq!(
                verify(&public, AuthMethod::DigitalSignature, &data, msg),
                Ok(alg)
            );
            // Another message, or a flipped signature bit, fails.
            assert_eq!(
                verify(&public, AuthMethod::DigitalSignature, &data, b"other"),
                Err(SignatureError::BadSignature)
            );
            let mut bad = data.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(
                verify(&public, AuthMethod::DigitalSignature, &bad, msg),
                Err(SignatureError::BadSignature)
            );
        }
    }

    #[test]
    fn algorithm_identifiers_are_the_rfc_objects() {
        // RFC 7427 Appendix A.3 and RFC 8420 Appendix A.1, as printed there.
        assert_eq!(
            SignatureAlgorithm::EcdsaWithSha256.algorithm_identifier(),
            [
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02
            ]
        );
        assert_eq!(
            SignatureAlgorithm::Ed25519.algorithm_identifier(),
            [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]
        );
        for alg in SignatureAlgorithm::ALL {
            let prefix = alg.auth_data_prefix();
            assert_eq!(usize::from(prefix[0]), prefix.len() - 1);
            assert_eq!(
                SignatureAlgorithm::from_algorithm_identifier(alg.algorithm_identifier()),
                Some(alg)
            );
        }
    }

    #[test]
    fn refuses_other_methods_and_algorithms() {
        let rng = SystemRandom::new();
        let key = ed25519();
        let data = sign(&key, b"m", &rng).unwrap();
        let public = key.public_key();
        assert_eq!(
            verify(&public, AuthMethod::SharedKeyMic, &data, b"m"),
            Err(SignatureError::NotDigitalSignature(
                AuthMethod::SharedKeyMic
            ))
        );
        assert_eq!(
            verify(&public, AuthMethod::Ecdsa256, &data, b"m"),
            Err(SignatureError::NotDigitalSignature(AuthMethod::Ecdsa256))
        );
        // id-Ed448 (RFC 8420 Appendix A.2) is a real object, but not one we take.
        let mut ed448 = vec![0x07, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71];
        ed448.extend_from_slice(&data[8..]);
        assert_eq!(
            verify(&public, AuthMethod::DigitalSignature, &ed448, b"m"),
            Err(SignatureError::UnknownAlgorithm)
        );
        // ecdsa-with-SHA256 with NULL parameters is not the RFC 7427 object.
        let mut with_null = vec![0x0e, 0x30, 0x0c, 0x06, 0x08];
        with_null.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00]);
        with_null.extend_from_slice(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]);
        assert_eq!(
            verify(&public, AuthMethod::DigitalSignature, &with_null, b"m"),
            Err(SignatureError::UnknownAlgorithm)
        );
    }

    #[test]
    fn algorithm_must_fit_the_key() {
        let rng = SystemRandom::new();
        let ecdsa = key(&signature::ECDSA_P256_SHA256_ASN1_SIGNING);
        let data = sign(&ecdsa, b"m", &rng).unwrap();
        let ed = ed25519().public_key();
        assert_eq!(
            verify(&ed, AuthMethod::DigitalSignature, &data, b"m"),
            Err(SignatureError::KeyMismatch {
                algorithm: SignatureAlgorithm::EcdsaWithSha256,
                key: KeyType::Ed25519
            })
        );
    }

    #[test]
    fn truncated_and_garbage_data_is_refused() {
        let public = ed25519().public_key();
        let cases: [&[u8]; 5] = [&[], &[0x07], &[0x07, 0x30, 0x05], &[0xff; 40], &[0; 3]];
        for data in cases {
            let err = verify(&public, AuthMethod::DigitalSignature, data, b"m").unwrap_err();
            assert!(
                matches!(
                    err,
                    SignatureError::Truncated | SignatureError::UnknownAlgorithm
                ),
                "{data:02x?}: {err:?}"
            );
        }
        // A valid prefix with an empty or short signature.
        for sig_len in [0, 1, 63] {
            let mut data = ID_ED25519.to_vec();
            data.resize(ID_ED25519.len() + sig_len, 0xaa);
            assert_eq!(
                verify(&public, AuthMethod::DigitalSignature, &data, b"m"),
                Err(SignatureError::BadSignature)
            );
        }
    }

    #[test]
    fn hash_algorithms_notification() {
        let data = encode_hash_algorithms(&SUPPORTED_HASHES);
        assert_eq!(data, [0, 2, 0, 3, 0, 5]);
        assert_eq!(decode_hash_algorithms(&data).unwrap(), SUPPORTED_HASHES);
        // strongSwan's list (SHA2-256, SHA2-384, SHA2-512, Identity) and an unknown value.
        let theirs = decode_hash_algorithms(&[0, 2, 0, 3, 0, 4, 0, 5, 0x12, 0x34]).unwrap();
        assert_eq!(theirs[4], HashAlgorithm::Unknown(0x1234));
        assert_eq!(
            pick_hash(&SUPPORTED_HASHES, &theirs),
            Some(HashAlgorithm::Sha2_256)
        );
        assert_eq!(
            pick_hash(&[HashAlgorithm::Identity], &theirs),
            Some(HashAlgorithm::Identity)
        );
        assert_eq!(pick_hash(&SUPPORTED_HASHES, &[HashAlgorithm::Sha1]), None);
        assert_eq!(
            decode_hash_algorithms(&[0, 2, 0]),
            Err(SignatureError::MalformedHashList)
        );
        for alg in SignatureAlgorithm::ALL {
            assert!(SUPPORTED_HASHES.contains(&alg.hash()));
        }
    }

    #[test]
    fn key_loading() {
        let rng = SystemRandom::new();
        let p256 =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = SigningKey::from_pkcs8(p256.as_ref(), &rng).unwrap();
        assert_eq!(key.algorithm(), SignatureAlgorithm::EcdsaWithSha256);
        let debug = format!("{key:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert_eq!(
            SigningKey::from_pkcs8(b"not a key", &rng).unwrap_err(),
            KeyError::Unsupported
        );
        assert_eq!(
            SigningKey::from_pem(b"no pem here", &rng).unwrap_err(),
            KeyError::Pem
        );
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(
            SigningKey::from_pem(sec1.as_bytes(), &rng).unwrap_err(),
            KeyError::NotPkcs8
        );
    }
}
