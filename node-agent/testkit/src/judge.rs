//! tshark as the judge of an IKEv2/ESP capture: given a key log ([`KeyLog`]) it decrypts every
//! IKE message after IKE_SA_INIT (RFC 7296 section 3.14, RFC 5282) and checks the ICV of every
//! ESP packet (RFC 4303 section 3.4.4, RFC 4106), and finds no malformed packet and no expert
//! error. UAT syntax: ../shared/interop/README.md.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use crate::keylog::KeyLog;

/// The IKE_SA_INIT exchange type (RFC 7296 section 3.1), sent in clear.
const IKE_SA_INIT: &str = "34";

/// tshark's severity value of an expert error (`PI_ERROR`).
const EXPERT_ERROR: u32 = 0x0080_0000;

/// What the judge counted in a capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JudgeReport {
    /// Frames in the capture.
    pub frames: usize,
    /// IKE messages (including IKE_SA_INIT).
    pub ike_messages: usize,
    /// IKE messages after IKE_SA_INIT, which must all decrypt.
    pub ike_encrypted: usize,
    /// Of these, decrypted with a good ICV.
    pub ike_decrypted: usize,
    /// ESP packets.
    pub esp_packets: usize,
    /// Of these, with ICV good.
    pub esp_icv_good: usize,
    /// Frames tshark marks malformed.
    pub malformed: usize,
    /// Frames with an expert error.
    pub expert_errors: usize,
}

/// A capture the judge rejects: what it counted and each reason.
#[derive(Debug, Clone)]
pub struct JudgeFailure {
    /// The counts.
    pub report: JudgeReport,
    /// One line per failed check.
    pub problems: Vec<String>,
}

impl fmt::Display for JudgeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tshark judge failed ({:?}):", self.report)?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for JudgeFailure {}

/// tshark's label of an IKEv2 encryption algorithm in the key log's naming.
fn ike_encr_label(encr: &str) -> Result<&'static str, String> {
    match encr {
        "AES_GCM_16_128" => Ok("AES-GCM-128 with 16 octet ICV [RFC5282]"),
        "AES_GCM_16_256" => Ok("AES-GCM-256 with 16 octet ICV [RFC5282]"),
        "CHACHA20_POLY1305" => Err("tshark 4.0 cannot decrypt IKEv2 with ChaCha20-Poly1305".into()),
        other => Err(format!("no tshark IKEv2 label for {other}")),
    }
}

/// tshark's label of an ESP encryption algorithm in the key log's naming.
fn esp_encr_label(encr: &str) -> Result<&'static str, String> {
    match encr {
        "AES_GCM_16_128" | "AES_GCM_16_256" => Ok("AES-GCM with 16 octet ICV [RFC4106]"),
        "CHACHA20_POLY1305" => Err("tshark 4.0 cannot decrypt ESP with ChaCha20-Poly1305".into()),
        other => Err(format!("no tshark ESP label for {other}")),
    }
}

fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The tshark options that load `keys`: ESP decryption and ICV checks on, one
/// `uat:ikev2_decryption_table` record per IKE SA and one `uat:esp_sa` record per ESP SA.
///
/// # Errors
/// A malformed SPI, an algorithm tshark cannot decrypt, or integrity keys with an AEAD.
pub fn tshark_key_options(keys: &KeyLog) -> Result<Vec<String>, String> {
    let mut options = vec![
        "-o".to_owned(),
        "esp.enable_encryption_decode:TRUE".to_owned(),
        "-o".to_owned(),
        "esp.enable_authentication_check:TRUE".to_owned(),
    ];
    for ike in &keys.ike_sas {
        if !is_hex(&ike.spi_i, 16) || !is_hex(&ike.spi_r, 16) {
            return Err(format!(
                "IKE SPIs must be 16 hex digits: {} {}",
                ike.spi_i, ike.spi_r
            ));
        }
        if ike.integ.is_some() || ike.sk_ai.is_some() || ike.sk_ar.is_some() {
            return Err(format!("IKE SA {}: integrity keys with an AEAD", ike.spi_i));
        }
        options.push("-o".to_owned());
        options.push(format!(
            "uat:ikev2_decryption_table:{},{},{},{},\"{}\",,,\"NONE [RFC4306]\"",
            ike.spi_i,
            ike.spi_r,
            ike.sk_ei.hex(),
            ike.sk_er.hex(),
            ike_encr_label(&ike.encr)?
        ));
    }
    for esp in &keys.esp_sas {
        let spi_ok = esp.spi.strip_prefix("0x").is_some_and(|h| is_hex(h, 8));
        if !spi_ok {
            return Err(format!("ESP SPI must be 0x + 8 hex digits: {}", esp.spi));
        }
        if esp.integ.is_some() || esp.integ_key.is_some() {
            return Err(format!("ESP SA {}: integrity key with an AEAD", esp.spi));
        }
        let family = match (esp.src, esp.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => "IPv4",
            (IpAddr::V6(_), IpAddr::V6(_)) => "IPv6",
            _ => return Err(format!("ESP SA {}: mixed address families", esp.spi)),
        };
        options.push("-o".to_owned());
        options.push(format!(
            "uat:esp_sa:\"{family}\",\"{}\",\"{}\",\"{}\",\"{}\",\"0x{}\",\"NULL\",\"\"",
            esp.src,
            esp.dst,
            esp.spi,
            esp_encr_label(&esp.encr)?,
            esp.encr_key.hex()
        ));
    }
    Ok(options)
}

/// Judges `pcap` with `keys`: every IKE message after IKE_SA_INIT decrypts with a good ICV,
/// every ESP packet has ICV good, no frame is malformed or carries an expert error.
///
/// # Errors
/// A [`JudgeFailure`] listing every check that failed, with the counts.
pub fn judge(pcap: &Path, keys: &KeyLog) -> Result<JudgeReport, JudgeFailure> {
    let mut options = tshark_key_options(keys).map_err(|e| JudgeFailure {
        report: JudgeReport::default(),
        problems: vec![e],
    })?;
    // A live capture on the sending side holds partial IP/UDP checksums (checksum offload on
    // veth), and those are the kernel's, not the engine's: do not judge them.
    options.extend(
        [
            "-o",
            "ip.check_checksum:FALSE",
            "-o",
            "udp.check_checksum:FALSE",
        ]
        .map(str::to_owned),
    );
    let rows = crate::tshark_fields_with(
        pcap,
        &options,
        &[
            "frame.number",
            "isakmp.exchangetype",
            "esp.spi",
            "esp.icv_good",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
    );
    let decrypted: Vec<String> = crate::tshark_fields_where(
        pcap,
        &options,
        "isakmp.enc.decrypted && !isakmp.ikev2.integrity_checksum && !_ws.malformed",
        &["frame.number"],
    )
    .into_iter()
    .filter_map(|r| r.into_iter().next())
    .collect();
    let mut report = JudgeReport::default();
    let mut problems = Vec::new();
    for row in &rows {
        let field = |i: usize| row.get(i).map(String::as_str).unwrap_or_default();
        let frame = field(0);
        report.frames += 1;
        for exchange in field(1).split(',').filter(|e| !e.is_empty()) {
            report.ike_messages += 1;
            if exchange != IKE_SA_INIT {
                report.ike_encrypted += 1;
                if decrypted.iter().any(|f| f == frame) {
                    report.ike_decrypted += 1;
                } else {
                    problems.push(format!(
                        "frame {frame}: IKE exchange {exchange} does not decrypt"
                    ));
                }
            }
        }
        for (i, spi) in field(2).split(',').filter(|s| !s.is_empty()).enumerate() {
            report.esp_packets += 1;
            let good = field(3).split(',').nth(i);
            if matches!(good, Some("1" | "True")) {
                report.esp_icv_good += 1;
            } else {
                problems.push(format!("frame {frame}: ESP SPI {spi} without ICV good"));
            }
        }
        if !field(4).is_empty() {
            report.malformed += 1;
            problems.push(format!("frame {frame}: malformed"));
        }
        let error = field(5)
            .split(',')
            .filter_map(|s| s.parse::<u32>().ok())
            .any(|s| s >= EXPERT_ERROR);
        if error {
            report.expert_errors += 1;
            problems.push(format!("frame {frame}: expert error"));
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(JudgeFailure { report, problems })
    }
}
