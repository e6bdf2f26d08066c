//! References to Kubernetes Secrets: under Kubernetes the agent reads its pre-shared key,
//! certificates and NHRP password from Secrets in its own namespace (`$POD_NAMESPACE`)
//! instead of files.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Issue;

/// A key of a Secret in the agent's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name, a DNS subdomain (RFC 1123).
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// The key in the Secret's `data`.
    #[schemars(length(min = 1, max = 253), regex(pattern = KEY_PATTERN))]
    pub key: String,
}

/// A `kubernetes.io/tls` Secret in the agent's namespace, as cert-manager writes it:
/// `tls.crt` (this router's certificate), `tls.key` (its private key) and `ca.crt` (the CA
/// peers' certificates chain to, RFC 7296 section 3.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// The Secret's name, a DNS subdomain (RFC 1123).
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
}

/// A Kubernetes object name: a lower-case DNS subdomain (RFC 1123).
pub const NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
/// A Secret data key: letters, digits, `-`, `_` and `.`.
pub const KEY_PATTERN: &str = "^[-._a-zA-Z0-9]+$";

/// The `tls.crt` key of a `kubernetes.io/tls` Secret.
pub const TLS_CERT_KEY: &str = "tls.crt";
/// The `tls.key` key of a `kubernetes.io/tls` Secret.
pub const TLS_PRIVATE_KEY_KEY: &str = "tls.key";
/// The `ca.crt` key cert-manager adds to a `kubernetes.io/tls` Secret.
pub const TLS_CA_KEY: &str = "ca.crt";

/// Whether `name` is a DNS subdomain (RFC 1123) a Kubernetes object may be called.
pub fn is_object_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Whether `key` may be a key of a Secret's `data`.
pub fn is_data_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

impl SecretKeyRef {
    pub(crate) fn check(&self, path: &str, out: &mut Vec<Issue>) {
        check_name(&self.name, path, out);
        if !is_data_key(&self.key) {
            out.push(Issue::new(
                format!("{path}.key"),
                format!(
                    "`{}` is not a Secret key: use letters, digits, `-`, `_` and `.`, such as psk",
                    self.key
                ),
            ));
        }
    }
}

impl SecretRef {
    pub(crate) fn check(&self, path: &str, out: &mut Vec<Issue>) {
        check_name(&self.name, path, out);
    }
}

fn check_name(name: &str, path: &str, out: &mut Vec<Issue>) {
    if !is_object_name(name) {
        out.push(Issue::new(
            format!("{path}.name"),
            format!(
                "`{name}` is not a Secret name: use lower-case letters, digits, `-` and `.`, such as dmvpn-psk"
            ),
        ));
    }
}
