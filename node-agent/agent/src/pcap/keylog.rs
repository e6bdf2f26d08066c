//! The key log of issue 4, read by `dmvpnctl pcap --key-log`: the keys of IKE SAs (RFC 7296
//! section 2.14) and ESP SAs (RFC 7296 section 2.17) that an agent started with `--key-log`
//! writes, in this shape:
//!
//! ```text
//! {"ike_sas":[{"spi_i","spi_r","encr","integ","sk_ei","sk_er","sk_ai","sk_ar"}],
//!  "esp_sas":[{"spi","src","dst","encr","encr_key","integ","integ_key"}]}
//! ```
//!
//! IKE SPIs are 16 hex digits, ESP SPIs `0x` and 8 hex digits, keys hex (with the 4-byte salt
//! at the end), algorithms named as strongSwan prints them (`AES_GCM_16_256`,
//! `CHACHA20_POLY1305`), `integ` null: only AEAD transforms exist here (RFC 8221, RFC 8247).
//!
//! Keys are held in [`KeyMaterial`], whose `Debug` is redacted and whose bytes are cleared on
//! drop; no error message carries a key.

use std::net::IpAddr;
use std::path::Path;

use dmvpn_esp::{Algorithm, KeyMaterial};
use serde::Deserialize;

/// Why a key log cannot be used. The messages name the SA and the field, never a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyLogError {
    /// The file cannot be read.
    #[error("reading the key log {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a key log (its JSON shape is wrong).
    #[error("the key log is not in the shape of issue 4 (at line {line}, column {column})")]
    Shape {
        /// Where the JSON went wrong.
        line: usize,
        /// Where the JSON went wrong.
        column: usize,
    },
    /// One field of one SA is wrong.
    #[error("key log {sa}: {field} {problem}")]
    Field {
        /// `ike_sas[0]`, `esp_sas[2]`.
        sa: String,
        /// The field name.
        field: &'static str,
        /// What is wrong, and what is expected.
        problem: String,
    },
}

#[derive(Deserialize)]
struct RawIke {
    spi_i: String,
    spi_r: String,
    encr: String,
    integ: Option<String>,
    sk_ei: String,
    sk_er: String,
}

#[derive(Deserialize)]
struct RawEsp {
    spi: String,
    src: IpAddr,
    dst: IpAddr,
    encr: String,
    encr_key: String,
    integ: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    ike_sas: Vec<RawIke>,
    #[serde(default)]
    esp_sas: Vec<RawEsp>,
}

/// The keys of one IKE SA.
#[derive(Debug, Clone)]
pub struct IkeKeys {
    /// The initiator's SPI.
    pub spi_i: u64,
    /// The responder's SPI.
    pub spi_r: u64,
    /// SK_ei: protects what the original initiator sends.
    pub sk_ei: KeyMaterial,
    /// SK_er: protects what the original responder sends.
    pub sk_er: KeyMaterial,
}

/// The keys of one ESP SA (one direction).
#[derive(Debug, Clone)]
pub struct EspKeys {
    /// The SPI.
    pub spi: u32,
    /// The outer source address of its packets.
    pub src: IpAddr,
    /// The outer destination address of its packets.
    pub dst: IpAddr,
    /// Key and salt.
    pub key: KeyMaterial,
}

/// A parsed key log.
#[derive(Debug, Clone, Default)]
pub struct KeyLog {
    /// IKE SAs.
    pub ike: Vec<IkeKeys>,
    /// ESP SAs.
    pub esp: Vec<EspKeys>,
}

fn field(sa: &str, field: &'static str, problem: impl Into<String>) -> KeyLogError {
    KeyLogError::Field {
        sa: sa.to_owned(),
        field,
        problem: problem.into(),
    }
}

fn hex_u64(sa: &str, name: &'static str, text: &str, digits: usize) -> Result<u64, KeyLogError> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(field(sa, name, format!("must be {digits} hex digits")));
    }
    u64::from_str_radix(text, 16)
        .map_err(|_| field(sa, name, format!("must be {digits} hex digits")))
}

fn algorithm(sa: &str, name: &str, integ: Option<&String>) -> Result<Algorithm, KeyLogError> {
    if integ.is_some() {
        return Err(field(
            sa,
            "integ",
            "must be null: only AEAD transforms are supported (AES_GCM_16_128, AES_GCM_16_256, CHACHA20_POLY1305)",
        ));
    }
    Algorithm::ALL
        .into_iter()
        .find(|a| a.name() == name)
        .ok_or_else(|| {
            field(
                sa,
                "encr",
                format!("`{name}` is not one of AES_GCM_16_128, AES_GCM_16_256, CHACHA20_POLY1305"),
            )
        })
}

fn key(
    sa: &str,
    name: &'static str,
    algorithm: Algorithm,
    text: &str,
) -> Result<KeyMaterial, KeyLogError> {
    let expected = algorithm.key_material_len();
    let wrong = || {
        field(
            sa,
            name,
            format!(
                "must be {} hex digits for {} (key and 4-byte salt)",
                2 * expected,
                algorithm.name()
            ),
        )
    };
    if text.len() != 2 * expected || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(wrong());
    }
    let mut bytes = [0u8; dmvpn_esp::algorithm::MAX_KEY_MATERIAL_LEN];
    for (i, b) in bytes.iter_mut().take(expected).enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| wrong())?;
    }
    let k = KeyMaterial::new(algorithm, &bytes[..expected]).map_err(|_| wrong());
    bytes.fill(0);
    k
}

impl KeyLog {
    /// Parses the JSON text of a key log.
    ///
    /// # Errors
    /// [`KeyLogError::Shape`] or [`KeyLogError::Field`].
    pub fn parse(text: &str) -> Result<Self, KeyLogError> {
        let raw: Raw = serde_json::from_str(text).map_err(|e| KeyLogError::Shape {
            line: e.line(),
            column: e.column(),
        })?;
        let mut log = KeyLog::default();
        for (i, r) in raw.ike_sas.iter().enumerate() {
            let sa = format!("ike_sas[{i}]");
            let a = algorithm(&sa, &r.encr, r.integ.as_ref())?;
            log.ike.push(IkeKeys {
                spi_i: hex_u64(&sa, "spi_i", &r.spi_i, 16)?,
                spi_r: hex_u64(&sa, "spi_r", &r.spi_r, 16)?,
                sk_ei: key(&sa, "sk_ei", a, &r.sk_ei)?,
                sk_er: key(&sa, "sk_er", a, &r.sk_er)?,
            });
        }
        for (i, r) in raw.esp_sas.iter().enumerate() {
            let sa = format!("esp_sas[{i}]");
            let spi = r
                .spi
                .strip_prefix("0x")
                .ok_or_else(|| field(&sa, "spi", "must be 0x and 8 hex digits"))
                .and_then(|h| hex_u64(&sa, "spi", h, 8))?;
            let a = algorithm(&sa, &r.encr, r.integ.as_ref())?;
            log.esp.push(EspKeys {
                spi: u32::try_from(spi)
                    .map_err(|_| field(&sa, "spi", "must be 0x and 8 hex digits"))?,
                src: r.src,
                dst: r.dst,
                key: key(&sa, "encr_key", a, &r.encr_key)?,
            });
        }
        Ok(log)
    }

    /// Reads and parses the key log at `path`.
    ///
    /// # Errors
    /// As [`KeyLog::parse`], or [`KeyLogError::Read`].
    pub fn read(path: &Path) -> Result<Self, KeyLogError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyLogError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The keys of the IKE SA with these SPIs.
    pub fn ike(&self, spi_i: u64, spi_r: u64) -> Option<&IkeKeys> {
        self.ike
            .iter()
            .find(|k| k.spi_i == spi_i && k.spi_r == spi_r)
    }

    /// The keys of the ESP SA of `spi` between these addresses, or of `spi` alone when the
    /// addresses differ (NAT between the capture and the agent).
    pub fn esp(&self, spi: u32, src: IpAddr, dst: IpAddr) -> Option<&EspKeys> {
        let mut by_spi = self.esp.iter().filter(|k| k.spi == spi);
        by_spi
            .clone()
            .find(|k| k.src == src && k.dst == dst)
            .or_else(|| by_spi.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY36: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223";

    fn log(ike_encr: &str, esp_spi: &str, esp_key: &str) -> String {
        format!(
            r#"{{"ike_sas":[{{"spi_i":"0123456789abcdef","spi_r":"fedcba9876543210","encr":"{ike_encr}","integ":null,"sk_ei":"{KEY36}","sk_er":"{KEY36}","sk_ai":null,"sk_ar":null}}],
               "esp_sas":[{{"spi":"{esp_spi}","src":"198.18.0.1","dst":"198.18.0.2","encr":"AES_GCM_16_256","encr_key":"{esp_key}","integ":null,"integ_key":null}}]}}"#
        )
    }

    #[test]
    fn reads_the_contract_shape() {
        let k = KeyLog::parse(&log("AES_GCM_16_256", "0xc32c6d83", KEY36)).unwrap();
        assert_eq!(k.ike[0].spi_i, 0x0123_4567_89ab_cdef);
        assert_eq!(k.ike[0].sk_ei.expose()[35], 0x23);
        let esp = k
            .esp(
                0xc32c_6d83,
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
            )
            .unwrap();
        assert_eq!(esp.key.algorithm(), Algorithm::AesGcm16_256);
        assert!(k.ike(0x0123_4567_89ab_cdef, 1).is_none());
        assert!(!format!("{k:?}").contains("0102030405"));
    }

    #[test]
    fn errors_name_the_field_and_never_the_key() {
        for (text, wanted) in [
            (
                log("3DES", "0xc32c6d83", KEY36),
                "ike_sas[0]: encr `3DES` is not one of",
            ),
            (
                log("AES_GCM_16_256", "c32c6d83", KEY36),
                "esp_sas[0]: spi must be 0x",
            ),
            (
                log("AES_GCM_16_256", "0xc32c6d8", KEY36),
                "esp_sas[0]: spi must be 8 hex digits",
            ),
            (
                log("AES_GCM_16_256", "0xc32c6d83", &KEY36[..64]),
                "esp_sas[0]: encr_key must be 72 hex digits for AES_GCM_16_256",
            ),
            ("{\"ike_sas\":5}".to_owned(), "not in the shape of issue 4"),
        ] {
            let e = KeyLog::parse(&text).unwrap_err().to_string();
            assert!(e.contains(wanted), "{e}");
            assert!(!e.contains("0102030405"), "{e}");
        }
    }
}
