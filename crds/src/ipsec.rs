//! The `ipsec` section: IKEv2 (RFC 7296) and ESP (RFC 4303) protecting the GRE packets, what
//! IOS configures with `crypto ikev2 ...` / `crypto isakmp ...`, `crypto ipsec transform-set`,
//! `crypto ipsec profile` and `tunnel protection ipsec profile`.

use core::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::{self, Bounded};
use crate::error::{ConfigError, Issue};
use crate::secret::{SecretKeyRef, SecretRef};

mod ike_proposal;

/// IPsec protection of the tunnel (IOS `tunnel protection ipsec profile`): IKEv2 negotiates
/// ESP SAs between every pair of routers that exchange GRE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpsecSpec {
    /// The file holding the pre-shared key (IOS `crypto isakmp key` / `crypto ikev2 keyring`
    /// `pre-shared-key`), relative to the configuration file's folder; read with
    /// [`PreSharedKey::read`]. Either this or the three certificate files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_shared_key_file: Option<PathBuf>,
    /// This router's certificate, PEM (IOS `crypto pki trustpoint` enrollment and
    /// `authentication rsa-sig` / `ecdsa-sig`); with `privateKeyFile` and `caFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<PathBuf>,
    /// The certificate's private key, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
    /// The CA certificates peers' certificates must chain to, PEM (IOS
    /// `crypto pki trustpoint` with `crypto pki authenticate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Under Kubernetes, the Secret key holding the pre-shared key, in the agent's namespace;
    /// the operator renders it from the DmvpnHub or DmvpnSpoke. A configuration file uses
    /// `preSharedKeyFile` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_shared_key_secret_ref: Option<SecretKeyRef>,
    /// Under Kubernetes, the `kubernetes.io/tls` Secret holding this router's certificate,
    /// private key and CA (`tls.crt`, `tls.key`, `ca.crt`). A configuration file uses the
    /// three certificate files instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_secret_ref: Option<SecretRef>,
    /// The identity this router sends in IKE_AUTH (IOS `identity local`, RFC 7296 section
    /// 3.5); absent, its underlay address, as on IOS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// IKE SA proposals in strongSwan syntax, most preferred first (IOS `crypto ikev2
    /// proposal`, `encryption` + `prf` + `group`); default `aes256gcm16-prfsha384-x25519`.
    #[serde(default = "default_ike")]
    pub ike: Vec<String>,
    /// ESP proposals in strongSwan syntax, most preferred first (IOS `crypto ipsec
    /// transform-set ... esp-gcm 256`); default `aes256gcm16`.
    #[serde(default = "default_esp")]
    pub esp: Vec<String>,
    /// ESP mode (IOS transform-set `mode transport`); default transport, which protects the
    /// GRE packet between the two underlay addresses.
    #[serde(default)]
    pub mode: IpsecMode,
    /// Encapsulate ESP in UDP 4500 (RFC 3948) even when no NAT is found, by announcing one
    /// in IKE's NAT detection (RFC 7296 section 2.23) so that the peer does the same
    /// (strongSwan `encap = yes`; IOS has no equivalent, it follows NAT detection).
    #[serde(default)]
    pub force_udp_encap: bool,
    /// Seconds between dead peer detection checks when no traffic arrives (IOS
    /// `crypto ikev2 dpd <10-3600> ... periodic`, an INFORMATIONAL exchange of RFC 7296
    /// section 1.4); absent, liveness is only checked on demand (IOS `crypto ikev2 dpd 10 2
    /// on-demand`, RFC 7296 section 2.4): when traffic went to a peer and nothing came back
    /// for 10 s, and a peer that does not answer the check and its retransmissions loses its
    /// SAs (an NHS is reached over new ones and registered with at once).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_int::<_, DpdInterval, _>"
    )]
    #[schemars(range(min = 10, max = 3600))]
    pub dpd_interval: Option<u16>,
}

/// ESP mode (RFC 4301 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IpsecMode {
    /// Transport mode (IOS `mode transport`): ESP protects the GRE packet between the two
    /// underlay addresses, 20 bytes less overhead than tunnel mode.
    #[default]
    Transport,
    /// Tunnel mode (IOS's transform-set default): an extra outer IP header.
    Tunnel,
}

/// An IKE identity (RFC 7296 section 3.5): IOS `identity local address | fqdn | key-id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Identity {
    /// `ID_IPV4_ADDR` or `ID_IPV6_ADDR`.
    #[serde(deserialize_with = "de::text::<_, de::Address>")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    Address(core::net::IpAddr),
    /// `ID_FQDN`: a DNS name such as `hub.example.com`.
    Fqdn(String),
    /// `ID_KEY_ID`: an opaque string.
    KeyId(String),
}

fn default_ike() -> Vec<String> {
    vec![DEFAULT_IKE_PROPOSAL.to_owned()]
}

fn default_esp() -> Vec<String> {
    vec![DEFAULT_ESP_PROPOSAL.to_owned()]
}

/// The default IKE proposal: AES-256-GCM, PRF HMAC-SHA-384, Curve25519 (RFC 8247 section 2
/// "SHOULD" algorithms).
pub const DEFAULT_IKE_PROPOSAL: &str = "aes256gcm16-prfsha384-x25519";
/// The default ESP proposal: AES-256-GCM with a 16-byte ICV (RFC 8221 section 5).
pub const DEFAULT_ESP_PROPOSAL: &str = "aes256gcm16";

struct DpdInterval;
impl Bounded for DpdInterval {
    const MIN: u64 = 10;
    const MAX: u64 = 3600;
    const EXPECTED: &'static str =
        "seconds from 10 to 3600 (IOS `crypto ikev2 dpd` range) such as 30";
}

/// The longest pre-shared key file read: a key is a line, not a document.
pub const MAX_PRE_SHARED_KEY_LEN: u64 = 4096;

impl IpsecSpec {
    fn cert_files(&self) -> [(&'static str, &Option<PathBuf>); 3] {
        [
            ("certificateFile", &self.certificate_file),
            ("privateKeyFile", &self.private_key_file),
            ("caFile", &self.ca_file),
        ]
    }

    pub(crate) fn check(&self, out: &mut Vec<Issue>) {
        let any_cert = self.cert_files().iter().any(|(_, f)| f.is_some());
        let psk_ref = self.pre_shared_key_secret_ref.is_some();
        let cert_ref = self.certificate_secret_ref.is_some();
        if let Some(r) = &self.pre_shared_key_secret_ref {
            r.check("ipsec.preSharedKeySecretRef", out);
        }
        if let Some(r) = &self.certificate_secret_ref {
            r.check("ipsec.certificateSecretRef", out);
        }
        if psk_ref || cert_ref {
            if psk_ref && cert_ref || self.pre_shared_key_file.is_some() || any_cert {
                out.push(Issue::new(
                    "ipsec",
                    "more than one authentication: keep one of preSharedKeyFile, the certificate files, preSharedKeySecretRef and certificateSecretRef",
                ));
            }
        } else {
            self.check_files(any_cert, out);
        }
        let files = [("preSharedKeyFile", &self.pre_shared_key_file)]
            .into_iter()
            .chain(self.cert_files());
        for (name, file) in files {
            if file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
                out.push(Issue::new(
                    format!("ipsec.{name}"),
                    "the file name is empty: name a file, relative to the configuration file's folder",
                ));
            }
        }
        if let Some(id) = &self.identity {
            check_identity(id, out);
        }
        if self.ike.is_empty() {
            out.push(Issue::new(
                "ipsec.ike",
                format!("no IKE proposal: write [{DEFAULT_IKE_PROPOSAL}] or remove the key for that default"),
            ));
        }
        for (i, p) in self.ike.iter().enumerate() {
            if let Err(e) = ike_proposal::check(p) {
                out.push(Issue::new(format!("ipsec.ike[{i}]"), e));
            }
        }
        if self.esp.is_empty() {
            out.push(Issue::new(
                "ipsec.esp",
                format!("no ESP proposal: write [{DEFAULT_ESP_PROPOSAL}] or remove the key for that default"),
            ));
        }
        for (i, p) in self.esp.iter().enumerate() {
            if let Err(e) = dmvpn_esp::Proposal::parse(p) {
                out.push(Issue::new(format!("ipsec.esp[{i}]"), e.to_string()));
            }
        }
    }

    /// Checks the authentication of a configuration file: a key file or all three certificate
    /// files.
    fn check_files(&self, any_cert: bool, out: &mut Vec<Issue>) {
        match (&self.pre_shared_key_file, any_cert) {
            (None, false) => out.push(Issue::new(
                "ipsec",
                "no authentication: set preSharedKeyFile (such as hub.psk), or certificateFile, privateKeyFile and caFile; or remove `ipsec` for unprotected GRE (tests only)",
            )),
            (Some(_), true) => out.push(Issue::new(
                "ipsec.preSharedKeyFile",
                "both a pre-shared key and certificates: keep one, remove preSharedKeyFile or the certificate files",
            )),
            (None, true) => {
                for (name, file) in self.cert_files() {
                    if file.is_none() {
                        out.push(Issue::new(
                            format!("ipsec.{name}"),
                            "certificate authentication needs certificateFile, privateKeyFile and caFile: add this one",
                        ));
                    }
                }
            }
            (Some(_), false) => {}
        }
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for file in [
            &mut self.pre_shared_key_file,
            &mut self.certificate_file,
            &mut self.private_key_file,
            &mut self.ca_file,
        ]
        .into_iter()
        .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
    }
}

/// The longest DNS name (RFC 1035 section 2.3.4).
const MAX_FQDN_LEN: usize = 253;

fn check_identity(id: &Identity, out: &mut Vec<Issue>) {
    match id {
        Identity::Address(_) => {}
        Identity::Fqdn(name) => {
            let name = name.strip_suffix('.').unwrap_or(name);
            let label_ok = |l: &str| {
                (1..=63).contains(&l.len())
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            };
            if name.is_empty() || name.len() > MAX_FQDN_LEN || !name.split('.').all(label_ok) {
                out.push(Issue::new(
                    "ipsec.identity.fqdn",
                    format!("`{name}` is not a DNS name (RFC 1035 section 2.3.1): use one such as hub.example.com"),
                ));
            }
        }
        Identity::KeyId(key) => {
            if key.is_empty() {
                out.push(Issue::new(
                    "ipsec.identity.keyId",
                    "the key id is empty: write one such as hub-1",
                ));
            }
        }
    }
}

/// A pre-shared key read from its file (IOS `crypto isakmp key` / `crypto ikev2 keyring`
/// `pre-shared-key`, the shared secret of RFC 7296 section 2.15). `Debug` prints
/// `<redacted>`, and the bytes are overwritten when it is dropped.
pub struct PreSharedKey(Vec<u8>);

impl PreSharedKey {
    /// Reads a key file: its bytes, less one trailing line break (`\n` or `\r\n`).
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Invalid`] (at path
    /// `ipsec.preSharedKeyFile`) when it is empty or longer than [`MAX_PRE_SHARED_KEY_LEN`]
    /// bytes. Errors name the file, never its contents.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::with_capacity(MAX_PRE_SHARED_KEY_LEN as usize + 1);
        // Capacity for the whole key up front: no reallocation leaves a copy behind.
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_PRE_SHARED_KEY_LEN + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        let mut key = PreSharedKey(bytes);
        if key.0.ends_with(b"\n") {
            key.0.pop();
            if key.0.ends_with(b"\r") {
                key.0.pop();
            }
        }
        let problem = if key.0.is_empty() {
            "is empty: write the key on one line"
        } else if key.0.len() as u64 > MAX_PRE_SHARED_KEY_LEN {
            "is longer than 4096 bytes: a key file holds one line, is it the right file?"
        } else {
            return Ok(key);
        };
        Err(ConfigError::Invalid {
            file: None,
            issues: vec![Issue::new(
                "ipsec.preSharedKeyFile",
                format!("{} {problem}", path.display()),
            )],
        })
    }

    /// A key from a Secret's value (`ipsec.preSharedKeySecretRef`), less one trailing line
    /// break, as a key file.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] at `ipsec.preSharedKeySecretRef` when it is empty or longer
    /// than [`MAX_PRE_SHARED_KEY_LEN`] bytes; the message names the Secret, never the key.
    pub fn from_secret(bytes: Vec<u8>, secret: &str) -> Result<Self, ConfigError> {
        let mut key = PreSharedKey(bytes);
        if key.0.ends_with(b"\n") {
            key.0.pop();
            if key.0.ends_with(b"\r") {
                key.0.pop();
            }
        }
        let problem = if key.0.is_empty() {
            "is empty: store the key in it"
        } else if key.0.len() as u64 > MAX_PRE_SHARED_KEY_LEN {
            "is longer than 4096 bytes: is it the right Secret?"
        } else {
            return Ok(key);
        };
        Err(ConfigError::Invalid {
            file: None,
            issues: vec![Issue::new(
                "ipsec.preSharedKeySecretRef",
                format!("the key of Secret {secret} {problem}"),
            )],
        })
    }

    /// The key, for the IKE engine's AUTH payload computation.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreSharedKey(<redacted>)")
    }
}

impl Drop for PreSharedKey {
    fn drop(&mut self) {
        // Best effort without `unsafe` volatile writes: black_box keeps the stores alive.
        self.0.fill(0);
        core::hint::black_box(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_key_loses_one_line_break_and_an_empty_one_is_refused_without_its_value() {
        let key = PreSharedKey::from_secret(b"s3cr3t\r\n".to_vec(), "ns/psk").unwrap();
        assert_eq!(key.expose(), b"s3cr3t");
        assert_eq!(format!("{key:?}"), "PreSharedKey(<redacted>)");
        let err = PreSharedKey::from_secret(b"\n".to_vec(), "ns/psk").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("ipsec.preSharedKeySecretRef") && text.contains("ns/psk"),
            "{text}"
        );
        let long = vec![b'k'; MAX_PRE_SHARED_KEY_LEN as usize + 1];
        let err = PreSharedKey::from_secret(long, "ns/psk").unwrap_err();
        assert!(!err.to_string().contains("kkkk"));
    }
}
