//! ESP AEAD transforms (RFC 8221 section 5: the AEADs an implementation should offer): AES-GCM
//! with a 16-byte ICV (RFC 4106) and ChaCha20-Poly1305 (RFC 7634), their key material, nonce and
//! additional authenticated data, and the strongSwan-style proposal names that select them.
//!
//! Both transforms are built the same way (RFC 4106 sections 3 to 5, RFC 7634 section 2):
//!
//! ```text
//! key material = key || salt (4 bytes)        from the IKEv2 KEYMAT (RFC 7296 section 2.17)
//! nonce        = salt || explicit IV (8 bytes)
//! AAD          = SPI || sequence             32-bit sequence numbers
//!              = SPI || seq_hi || seq_lo     extended sequence numbers (RFC 4106 section 5)
//! ```

use core::fmt;
use core::str::FromStr;

use ring::aead;

/// Bytes of salt at the end of the key material (RFC 4106 section 4, RFC 7634 section 2).
pub const SALT_LEN: usize = 4;

/// Bytes of explicit IV after the ESP header (RFC 4106 section 3.1, RFC 7634 section 2).
pub const IV_LEN: usize = 8;

/// Bytes of ICV at the end of the packet: every transform here has a 16-byte tag.
pub const ICV_LEN: usize = 16;

/// Longest key material of any transform (a 256-bit key and the salt).
pub const MAX_KEY_MATERIAL_LEN: usize = 32 + SALT_LEN;

/// An ESP encryption transform this crate implements, named as strongSwan prints it.
///
/// All are AEADs, so an SA has no separate integrity transform (strongSwan shows `integ` as
/// none, Cisco `esp-gcm` without `esp-sha-hmac`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// AES-GCM, 128-bit key, 16-byte ICV (RFC 4106); IKEv2 transform ID 20, key length 128.
    AesGcm16_128,
    /// AES-GCM, 256-bit key, 16-byte ICV (RFC 4106); IKEv2 transform ID 20, key length 256.
    AesGcm16_256,
    /// ChaCha20-Poly1305 (RFC 7634); IKEv2 transform ID 28.
    ChaCha20Poly1305,
}

impl Algorithm {
    /// Every transform, strongest default first.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::AesGcm16_256,
        Algorithm::ChaCha20Poly1305,
        Algorithm::AesGcm16_128,
    ];

    /// The name strongSwan prints (`AES_GCM_16_256`), also used by the key log of issue 4.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::AesGcm16_128 => "AES_GCM_16_128",
            Algorithm::AesGcm16_256 => "AES_GCM_16_256",
            Algorithm::ChaCha20Poly1305 => "CHACHA20_POLY1305",
        }
    }

    /// The strongSwan proposal keyword (`aes256gcm16`).
    pub const fn keyword(self) -> &'static str {
        match self {
            Algorithm::AesGcm16_128 => "aes128gcm16",
            Algorithm::AesGcm16_256 => "aes256gcm16",
            Algorithm::ChaCha20Poly1305 => "chacha20poly1305",
        }
    }

    /// The IKEv2 encryption transform (IANA "Transform Type 1") and framing in `dmvpn-wire`.
    pub const fn wire(self) -> dmvpn_wire::esp::Algorithm {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => {
                dmvpn_wire::esp::Algorithm::AesGcm16
            }
            Algorithm::ChaCha20Poly1305 => dmvpn_wire::esp::Algorithm::ChaCha20Poly1305,
        }
    }

    /// The Key Length attribute IKEv2 sends with the transform (RFC 7296 section 3.3.5), in
    /// bits; `None` for ChaCha20-Poly1305, which has a fixed key (RFC 7634 section 2).
    pub const fn key_length_attribute(self) -> Option<u16> {
        match self {
            Algorithm::AesGcm16_128 => Some(128),
            Algorithm::AesGcm16_256 => Some(256),
            Algorithm::ChaCha20Poly1305 => None,
        }
    }

    /// Bytes of cipher key, without the salt.
    pub const fn key_len(self) -> usize {
        match self {
            Algorithm::AesGcm16_128 => 16,
            Algorithm::AesGcm16_256 | Algorithm::ChaCha20Poly1305 => 32,
        }
    }

    /// Bytes of key material taken from KEYMAT: the key and the 4-byte salt (RFC 4106 section
    /// 8.1, RFC 7634 section 2).
    pub const fn key_material_len(self) -> usize {
        self.key_len() + SALT_LEN
    }

    /// Where the IV and ICV sit (`dmvpn-wire`'s framing).
    pub const fn layout(self) -> dmvpn_wire::esp::Layout {
        dmvpn_wire::esp::Layout {
            iv_len: IV_LEN,
            icv_len: ICV_LEN,
            alignment: 4,
        }
    }

    pub(crate) fn ring(self) -> &'static aead::Algorithm {
        match self {
            Algorithm::AesGcm16_128 => &aead::AES_128_GCM,
            Algorithm::AesGcm16_256 => &aead::AES_256_GCM,
            Algorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a proposal string or key was refused at configuration time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An algorithm RFC 8221 or RFC 8247 forbids or deprecates; the message names what to use.
    #[error("`{token}` is refused ({reason}): use `{replacement}`")]
    Forbidden {
        /// The keyword as written.
        token: String,
        /// The requirement level and where it is written.
        reason: &'static str,
        /// The modern keyword to write instead.
        replacement: &'static str,
    },
    /// A keyword this crate does not implement.
    #[error(
        "`{token}` is not an ESP transform this router implements: use aes256gcm16, aes128gcm16 or chacha20poly1305"
    )]
    Unsupported {
        /// The keyword as written.
        token: String,
    },
    /// A separate integrity algorithm with an AEAD, which carries its own (RFC 8221 section 5).
    #[error("`{token}` adds integrity to an AEAD, which has its own: drop it")]
    IntegrityWithAead {
        /// The keyword as written.
        token: String,
    },
    /// The proposal names no encryption transform.
    #[error("the ESP proposal names no encryption transform: add aes256gcm16")]
    NoEncryption,
    /// An SPI of 0 to 255, which RFC 4303 section 2.1 reserves.
    #[error("SPI {spi} is reserved (RFC 4303 section 2.1): SPIs start at 256")]
    ReservedSpi {
        /// The SPI.
        spi: u32,
    },
    /// Key material of the wrong length for the transform.
    #[error("{algorithm} needs {expected} bytes of key material (key and salt), got {got}")]
    KeyLength {
        /// The transform.
        algorithm: Algorithm,
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

/// Keywords refused at configuration time, each with the reason and the keyword to use
/// instead: encryption RFC 8221 section 5 marks MUST NOT or SHOULD NOT, integrity RFC 8221
/// section 6 marks MUST NOT or MUST- (and which an AEAD does not need), and Diffie-Hellman groups
/// RFC 8247 section 2.4 marks MUST NOT or SHOULD NOT.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    ("des", "MUST NOT, RFC 8221 section 5", "aes256gcm16"),
    ("des64", "MUST NOT, RFC 8221 section 5", "aes256gcm16"),
    ("3des", "SHOULD NOT, RFC 8221 section 5", "aes256gcm16"),
    ("blowfish", "MUST NOT, RFC 8221 section 5", "aes256gcm16"),
    ("3idea", "MUST NOT, RFC 8221 section 5", "aes256gcm16"),
    (
        "md5",
        "MUST NOT, RFC 8221 section 6",
        "aes256gcm16 (an AEAD, no separate integrity)",
    ),
    (
        "md5_128",
        "MUST NOT, RFC 8221 section 6",
        "aes256gcm16 (an AEAD, no separate integrity)",
    ),
    (
        "sha1",
        "MUST-, on its way out, RFC 8221 section 6",
        "aes256gcm16 (an AEAD, no separate integrity)",
    ),
    (
        "sha",
        "MUST-, on its way out, RFC 8221 section 6",
        "aes256gcm16 (an AEAD, no separate integrity)",
    ),
    (
        "sha1_160",
        "MUST-, on its way out, RFC 8221 section 6",
        "aes256gcm16 (an AEAD, no separate integrity)",
    ),
    ("modp768", "MUST NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1024", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1024s160", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1536", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp2048s224", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp2048s256", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
];

/// Integrity keywords that are not forbidden in themselves but make no sense with an AEAD.
const INTEGRITY: &[&str] = &[
    "sha256",
    "sha384",
    "sha512",
    "aesxcbc",
    "aescmac",
    "aes128gmac",
];

/// Diffie-Hellman keywords an ESP proposal may carry for PFS (RFC 7296 section 1.3.1); the
/// IKE engine negotiates them, this crate only lets them through.
const DH_GROUPS: &[&str] = &[
    "x25519",
    "curve25519",
    "x448",
    "curve448",
    "ecp256",
    "ecp384",
    "ecp521",
    "modp2048",
    "modp3072",
    "modp4096",
];

fn forbidden(token: &str) -> Option<ConfigError> {
    FORBIDDEN
        .iter()
        .find(|(name, _, _)| *name == token)
        .map(|&(_, reason, replacement)| ConfigError::Forbidden {
            token: token.to_owned(),
            reason,
            replacement,
        })
}

impl FromStr for Algorithm {
    type Err = ConfigError;

    /// Parses one strongSwan encryption keyword. `aes256gcm16`, its synonyms `aes256gcm128`
    /// (ICV in bits) and `aes256gcm`, the 128-bit forms, and `chacha20poly1305`.
    ///
    /// # Errors
    /// [`ConfigError::Forbidden`] for 3DES and friends, [`ConfigError::Unsupported`] otherwise.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let token = s.trim().to_ascii_lowercase();
        match token.as_str() {
            "aes128gcm16" | "aes128gcm128" | "aes128gcm" => Ok(Algorithm::AesGcm16_128),
            "aes256gcm16" | "aes256gcm128" | "aes256gcm" => Ok(Algorithm::AesGcm16_256),
            "chacha20poly1305" => Ok(Algorithm::ChaCha20Poly1305),
            _ => Err(forbidden(&token).unwrap_or(ConfigError::Unsupported { token })),
        }
    }
}

/// Whether an SA uses 64-bit extended sequence numbers (RFC 4303 section 2.2.1, negotiated
/// with the IKEv2 ESN transform, RFC 7296 section 3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SequenceNumbers {
    /// 32-bit sequence numbers; the SA must be rekeyed before 2^32 - 1 packets.
    #[default]
    Short,
    /// 64-bit extended sequence numbers, of which the low 32 bits travel.
    Extended,
}

/// An ESP proposal in strongSwan's syntax (`aes256gcm16-x25519-esn`): the transforms this crate
/// cares about, after refusing forbidden ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal<'a> {
    /// Encryption transforms, in the order written.
    pub encryption: Vec<Algorithm>,
    /// The sequence number choices (`esn`, `noesn`); `[Short]` when none is written, as in
    /// strongSwan.
    pub sequence_numbers: Vec<SequenceNumbers>,
    /// Diffie-Hellman keywords for PFS, passed to the IKE engine as written.
    pub dh_groups: Vec<&'a str>,
}

impl<'a> Proposal<'a> {
    /// Parses a dash-separated proposal.
    ///
    /// # Errors
    /// [`ConfigError::Forbidden`] naming the replacement for any forbidden keyword,
    /// [`ConfigError::IntegrityWithAead`], [`ConfigError::Unsupported`], or
    /// [`ConfigError::NoEncryption`].
    pub fn parse(s: &'a str) -> Result<Self, ConfigError> {
        let mut p = Proposal {
            encryption: Vec::new(),
            sequence_numbers: Vec::new(),
            dh_groups: Vec::new(),
        };
        // Forbidden keywords first, so the error names the replacement rather than some other
        // keyword's problem.
        for raw in s.split('-') {
            if let Some(e) = forbidden(&raw.trim().to_ascii_lowercase()) {
                return Err(e);
            }
        }
        for raw in s.split('-').map(str::trim) {
            let token = raw.to_ascii_lowercase();
            if INTEGRITY.contains(&token.as_str()) {
                return Err(ConfigError::IntegrityWithAead { token });
            }
            match token.as_str() {
                "esn" => p.sequence_numbers.push(SequenceNumbers::Extended),
                "noesn" => p.sequence_numbers.push(SequenceNumbers::Short),
                t if DH_GROUPS.contains(&t) => p.dh_groups.push(raw),
                _ => p.encryption.push(token.parse()?),
            }
        }
        if p.encryption.is_empty() {
            return Err(ConfigError::NoEncryption);
        }
        if p.sequence_numbers.is_empty() {
            p.sequence_numbers.push(SequenceNumbers::Short);
        }
        Ok(p)
    }
}

/// Key material of one SA direction: the cipher key followed by the 4-byte salt, as taken from
/// KEYMAT (RFC 7296 section 2.17; RFC 4106 section 8.1). Its `Debug` prints `<redacted>`, and
/// the bytes are overwritten when it is dropped.
#[derive(Clone)]
pub struct KeyMaterial {
    algorithm: Algorithm,
    bytes: [u8; MAX_KEY_MATERIAL_LEN],
}

impl KeyMaterial {
    /// Takes `key || salt` for `algorithm`.
    ///
    /// # Errors
    /// [`ConfigError::KeyLength`] when `bytes` is not [`Algorithm::key_material_len`] long; the
    /// error carries lengths only.
    pub fn new(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, ConfigError> {
        let expected = algorithm.key_material_len();
        if bytes.len() != expected {
            return Err(ConfigError::KeyLength {
                algorithm,
                expected,
                got: bytes.len(),
            });
        }
        let mut k = KeyMaterial {
            algorithm,
            bytes: [0; MAX_KEY_MATERIAL_LEN],
        };
        k.bytes[..expected].copy_from_slice(bytes);
        Ok(k)
    }

    /// The transform the material is for.
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw bytes, `key || salt`: for the opt-in key log only.
    pub fn expose(&self) -> &[u8] {
        &self.bytes[..self.algorithm.key_material_len()]
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("algorithm", &self.algorithm)
            .field("bytes", &format_args!("<redacted>"))
            .finish()
    }
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        // Best effort without `unsafe` volatile writes: black_box keeps the store alive.
        self.bytes = [0; MAX_KEY_MATERIAL_LEN];
        core::hint::black_box(&self.bytes);
    }
}

/// The 4-byte salt, kept beside the expanded key; `Debug` prints `<redacted>`.
#[derive(Clone, Copy)]
struct Salt([u8; SALT_LEN]);

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The keyed AEAD of one SA direction: the expanded key, the salt, and the nonce and AAD
/// constructions of RFC 4106 sections 4 and 5 / RFC 7634 section 2.
pub(crate) struct Cipher {
    key: aead::LessSafeKey,
    salt: Salt,
    algorithm: Algorithm,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("algorithm", &self.algorithm)
            .field("key", &format_args!("<redacted>"))
            .field("salt", &self.salt)
            .finish()
    }
}

/// Additional authenticated data: SPI || sequence (8 bytes) or SPI || seq_hi || seq_lo (12).
pub(crate) struct Aad {
    bytes: [u8; 12],
    len: usize,
}

impl AsRef<[u8]> for Aad {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Aad {
    /// The AAD of RFC 4106 section 5 (RFC 7634 section 2.1 is the same): the full 64-bit
    /// sequence number goes in only with ESN, high half first.
    #[inline]
    pub(crate) fn new(spi: u32, sequence: u64, esn: SequenceNumbers) -> Self {
        let mut bytes = [0; 12];
        bytes[..4].copy_from_slice(&spi.to_be_bytes());
        let len = match esn {
            SequenceNumbers::Short => {
                bytes[4..8].copy_from_slice(&(sequence as u32).to_be_bytes());
                8
            }
            SequenceNumbers::Extended => {
                bytes[4..12].copy_from_slice(&sequence.to_be_bytes());
                12
            }
        };
        Aad { bytes, len }
    }
}

impl Cipher {
    /// Expands the key.
    ///
    /// # Errors
    /// [`ConfigError::KeyLength`] if ring refuses the key, which `KeyMaterial::new` already
    /// rules out.
    pub(crate) fn new(key: &KeyMaterial) -> Result<Self, ConfigError> {
        let algorithm = key.algorithm;
        let (k, salt) = key.expose().split_at(algorithm.key_len());
        let mut s = [0; SALT_LEN];
        s.copy_from_slice(salt);
        let unbound =
            aead::UnboundKey::new(algorithm.ring(), k).map_err(|_| ConfigError::KeyLength {
                algorithm,
                expected: algorithm.key_material_len(),
                got: key.expose().len(),
            })?;
        Ok(Cipher {
            key: aead::LessSafeKey::new(unbound),
            salt: Salt(s),
            algorithm,
        })
    }

    pub(crate) const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The nonce: salt || explicit IV (RFC 4106 section 4).
    #[inline]
    fn nonce(&self, iv: [u8; IV_LEN]) -> aead::Nonce {
        let mut n = [0; aead::NONCE_LEN];
        n[..SALT_LEN].copy_from_slice(&self.salt.0);
        n[SALT_LEN..].copy_from_slice(&iv);
        aead::Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `in_out` in place and returns the ICV.
    #[inline]
    pub(crate) fn seal(
        &self,
        iv: [u8; IV_LEN],
        aad: &Aad,
        in_out: &mut [u8],
    ) -> Result<aead::Tag, ring::error::Unspecified> {
        self.key
            .seal_in_place_separate_tag(self.nonce(iv), aead::Aad::from(aad.as_ref()), in_out)
    }

    /// Verifies and decrypts `ciphertext || icv` in place; `None` when the ICV does not verify.
    #[inline]
    pub(crate) fn open<'a>(
        &self,
        iv: [u8; IV_LEN],
        aad: &Aad,
        ciphertext_and_icv: &'a mut [u8],
    ) -> Option<&'a mut [u8]> {
        self.key
            .open_in_place(
                self.nonce(iv),
                aead::Aad::from(aad.as_ref()),
                ciphertext_and_icv,
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keywords() {
        for a in Algorithm::ALL {
            assert_eq!(a.keyword().parse::<Algorithm>().unwrap(), a);
            assert_eq!(a.ring().key_len(), a.key_len());
            assert_eq!(a.wire().layout().unwrap(), a.layout());
        }
        assert_eq!(Algorithm::AesGcm16_256.to_string(), "AES_GCM_16_256");
        assert_eq!(Algorithm::ChaCha20Poly1305.name(), "CHACHA20_POLY1305");
        assert_eq!(
            "AES128GCM128".parse::<Algorithm>().unwrap(),
            Algorithm::AesGcm16_128
        );
        assert_eq!(Algorithm::AesGcm16_256.key_material_len(), 36);
        assert_eq!(Algorithm::AesGcm16_128.key_material_len(), 20);
        assert_eq!(Algorithm::ChaCha20Poly1305.key_material_len(), 36);
    }

    #[test]
    fn forbidden_names_replacement() {
        let e = "3des".parse::<Algorithm>().unwrap_err();
        assert_eq!(
            e,
            ConfigError::Forbidden {
                token: "3des".into(),
                reason: "SHOULD NOT, RFC 8221 section 5",
                replacement: "aes256gcm16"
            }
        );
        assert_eq!(
            e.to_string(),
            "`3des` is refused (SHOULD NOT, RFC 8221 section 5): use `aes256gcm16`"
        );
        // The seed's proposal: the first refused keyword is named.
        let e = Proposal::parse("3des-md5-modp1024").unwrap_err();
        assert!(e.to_string().starts_with("`3des` is refused"), "{e}");
        let e = Proposal::parse("aes256gcm16-md5").unwrap_err();
        assert!(matches!(e, ConfigError::Forbidden { .. }), "{e}");
        let e = Proposal::parse("aes128-sha1-modp1024").unwrap_err();
        assert!(e.to_string().contains("sha1"), "{e}");
        let e = Proposal::parse("aes256gcm16-modp1024").unwrap_err();
        assert!(e.to_string().contains("x25519"), "{e}");
        assert!(matches!(
            "aes256".parse::<Algorithm>().unwrap_err(),
            ConfigError::Unsupported { .. }
        ));
        assert!(matches!(
            Proposal::parse("aes256gcm16-sha256").unwrap_err(),
            ConfigError::IntegrityWithAead { .. }
        ));
        assert_eq!(
            Proposal::parse("esn").unwrap_err(),
            ConfigError::NoEncryption
        );
    }

    #[test]
    fn proposals() {
        let p = Proposal::parse("aes256gcm16-chacha20poly1305-x25519-esn-noesn").unwrap();
        assert_eq!(
            p.encryption,
            [Algorithm::AesGcm16_256, Algorithm::ChaCha20Poly1305]
        );
        assert_eq!(
            p.sequence_numbers,
            [SequenceNumbers::Extended, SequenceNumbers::Short]
        );
        assert_eq!(p.dh_groups, ["x25519"]);
        let p = Proposal::parse("aes128gcm16").unwrap();
        assert_eq!(p.sequence_numbers, [SequenceNumbers::Short]);
    }

    #[test]
    fn keys_are_redacted() {
        let bytes = [0xab; 36];
        let k = KeyMaterial::new(Algorithm::AesGcm16_256, &bytes).unwrap();
        let dbg = format!("{k:?}");
        assert!(
            dbg.contains("<redacted>") && !dbg.contains("ab") && !dbg.contains("171"),
            "{dbg}"
        );
        let c = Cipher::new(&k).unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("<redacted>") && !dbg.contains("171"), "{dbg}");
        let e = KeyMaterial::new(Algorithm::AesGcm16_128, &bytes).unwrap_err();
        assert_eq!(
            e.to_string(),
            "AES_GCM_16_128 needs 20 bytes of key material (key and salt), got 36"
        );
    }

    #[test]
    fn aad_layouts() {
        let a = Aad::new(0x0102_0304, 0x1111_2222_3333_4444, SequenceNumbers::Short);
        assert_eq!(a.as_ref(), [1, 2, 3, 4, 0x33, 0x33, 0x44, 0x44]);
        let a = Aad::new(
            0x0102_0304,
            0x1111_2222_3333_4444,
            SequenceNumbers::Extended,
        );
        assert_eq!(
            a.as_ref(),
            [1, 2, 3, 4, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44]
        );
    }
}
