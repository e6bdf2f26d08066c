//! The key log contract of issue 4: a JSON file with the keys of every IKE SA (RFC 7296
//! section 2.14) and ESP SA (RFC 7296 section 2.17, RFC 4303) that lets tshark decrypt a
//! capture. Shape:
//! `{"ike_sas":[{"spi_i","spi_r","encr","integ","sk_ei","sk_er","sk_ai","sk_ar"}],
//!   "esp_sas":[{"spi","src","dst","encr","encr_key","integ","integ_key"}]}`
//! with IKE SPIs as 16 hex digits, ESP SPIs as `0x` + 8 hex digits, keys as hex (AES-GCM keys
//! include the 4-byte salt), algorithm names as strongSwan prints them (`AES_GCM_16_256`,
//! `CHACHA20_POLY1305`) and `integ` null for AEAD.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Key bytes, written as hex in JSON and never shown by Debug.
#[derive(Clone, PartialEq, Eq)]
pub struct HexKey(Vec<u8>);

impl HexKey {
    /// A key of these bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        HexKey(bytes)
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key as lower-case hex digits.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses hex digits (either case, even count).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "not an even number of hex digits ({} chars)",
                text.len()
            ));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()
            .map(HexKey)
    }
}

impl fmt::Debug for HexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexKey(<{} bytes redacted>)", self.0.len())
    }
}

impl Serialize for HexKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for HexKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HexKey::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// The keys of one IKE SA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSaKeys {
    /// Initiator's SPI, 16 hex digits.
    pub spi_i: String,
    /// Responder's SPI, 16 hex digits.
    pub spi_r: String,
    /// Encryption algorithm (`AES_GCM_16_256`).
    pub encr: String,
    /// Integrity algorithm; null for AEAD.
    pub integ: Option<String>,
    /// SK_ei.
    pub sk_ei: HexKey,
    /// SK_er.
    pub sk_er: HexKey,
    /// SK_ai; null for AEAD.
    pub sk_ai: Option<HexKey>,
    /// SK_ar; null for AEAD.
    pub sk_ar: Option<HexKey>,
}

/// The keys of one ESP SA (one direction of a CHILD_SA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EspSaKeys {
    /// SPI, `0x` + 8 hex digits.
    pub spi: String,
    /// Outer source address of the packets this SA protects.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// Encryption algorithm (`AES_GCM_16_256`).
    pub encr: String,
    /// Encryption key (AES-GCM: key and 4-byte salt).
    pub encr_key: HexKey,
    /// Integrity algorithm; null for AEAD.
    pub integ: Option<String>,
    /// Integrity key; null for AEAD.
    pub integ_key: Option<HexKey>,
}

/// A key log: every IKE and ESP SA of a capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLog {
    /// IKE SAs.
    pub ike_sas: Vec<IkeSaKeys>,
    /// ESP SAs.
    pub esp_sas: Vec<EspSaKeys>,
}

impl KeyLog {
    /// Parses a key log from JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The key log as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a key log file.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Self::from_json(&text).map_err(std::io::Error::other)
    }

    /// Writes the key log to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_json())
    }
}
