//! The Secrets a `DmvpnNode` spec refers to, read from the agent's namespace
//! (`$POD_NAMESPACE`): the pre-shared key of IKEv2 (RFC 7296 section 2.15), the certificate,
//! key and CA of signature authentication (RFC 7427), and the NHRP password (RFC 2332
//! section 5.3.4). Errors name the Secret and key, never a value.

use dmvpn_crds::{
    ConfigError, DmvpnNodeSpec, NhrpAuthentication, PreSharedKey, SecretKeyRef, TLS_CA_KEY,
    TLS_CERT_KEY, TLS_PRIVATE_KEY_KEY,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::ipsec::SecretMaterial;

/// Why the Secrets of a spec cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The Secret does not exist.
    #[error(
        "Secret {namespace}/{name} (from {field}) not found: create it in the agent's namespace"
    )]
    Missing {
        /// The spec field referring to it.
        field: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The Secret lacks the key.
    #[error("Secret {namespace}/{name} (from {field}) has no key {key}")]
    MissingKey {
        /// The spec field referring to it.
        field: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key.
        key: String,
    },
    /// The value is unusable (the message names the Secret, not the value).
    #[error("{0}")]
    Invalid(ConfigError),
    /// The API server did not answer.
    #[error("reading Secret {namespace}/{name}: {source}")]
    Api {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl SecretError {
    /// The condition reason: `SecretMissing`, `SecretInvalid` or `ApiError`.
    pub fn reason(&self) -> &'static str {
        match self {
            SecretError::Missing { .. } | SecretError::MissingKey { .. } => "SecretMissing",
            SecretError::Invalid(_) => "SecretInvalid",
            SecretError::Api { .. } => "ApiError",
        }
    }
}

/// A spec with its Secrets read: the NHRP password moved into `nhrp.authentication`, and
/// the IKE credentials.
#[derive(Debug)]
pub struct Resolved {
    /// The spec with `nhrp.authentication` filled from its Secret.
    pub spec: DmvpnNodeSpec,
    /// The IKE credentials of `ipsec.preSharedKeySecretRef` or `ipsec.certificateSecretRef`.
    pub material: Option<SecretMaterial>,
}

/// Reads the Secrets `spec` refers to from `secrets`, an API of the agent's `namespace`.
///
/// # Errors
/// [`SecretError`].
pub async fn resolve(
    secrets: &Api<Secret>,
    namespace: &str,
    spec: &DmvpnNodeSpec,
) -> Result<Resolved, SecretError> {
    let mut spec = spec.clone();
    if let Some(r) = spec.nhrp.authentication_secret_ref.take() {
        let value = value(secrets, namespace, "nhrp.authenticationSecretRef", &r).await?;
        let password = String::from_utf8(value).map_err(|_| {
            SecretError::Invalid(invalid(
                "nhrp.authenticationSecretRef",
                format!(
                    "the key {} of Secret {namespace}/{} is not UTF-8 text",
                    r.key, r.name
                ),
            ))
        })?;
        let password = password.trim_end_matches(['\r', '\n']);
        if password.is_empty() || password.len() > dmvpn_crds::MAX_AUTHENTICATION_LEN {
            return Err(SecretError::Invalid(invalid(
                "nhrp.authenticationSecretRef",
                format!(
                    "the key {} of Secret {namespace}/{} must hold 1 to {} bytes (RFC 2332 section 5.3.4, as IOS ip nhrp authentication)",
                    r.key,
                    r.name,
                    dmvpn_crds::MAX_AUTHENTICATION_LEN
                ),
            )));
        }
        spec.nhrp.authentication = Some(NhrpAuthentication::new(password));
    }
    let mut material = None;
    if let Some(ipsec) = &mut spec.ipsec {
        if let Some(r) = ipsec.pre_shared_key_secret_ref.clone() {
            let bytes = value(secrets, namespace, "ipsec.preSharedKeySecretRef", &r).await?;
            let psk = PreSharedKey::from_secret(bytes, &format!("{namespace}/{}", r.name))
                .map_err(SecretError::Invalid)?;
            material = Some(SecretMaterial::PreSharedKey(psk));
        } else if let Some(r) = ipsec.certificate_secret_ref.clone() {
            let field = "ipsec.certificateSecretRef";
            let key = |key: &str| SecretKeyRef {
                name: r.name.clone(),
                key: key.to_owned(),
            };
            let chain = value(secrets, namespace, field, &key(TLS_CERT_KEY)).await?;
            let key_pem = value(secrets, namespace, field, &key(TLS_PRIVATE_KEY_KEY)).await?;
            let ca = value(secrets, namespace, field, &key(TLS_CA_KEY)).await?;
            material = Some(SecretMaterial::Certificate {
                chain,
                key: key_pem,
                ca,
            });
        }
    }
    Ok(Resolved { spec, material })
}

fn invalid(path: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        file: None,
        issues: vec![dmvpn_crds::Issue {
            path: path.to_owned(),
            message,
        }],
    }
}

/// The bytes of one key of a Secret.
async fn value(
    secrets: &Api<Secret>,
    namespace: &str,
    field: &'static str,
    r: &SecretKeyRef,
) -> Result<Vec<u8>, SecretError> {
    let secret = secrets
        .get_opt(&r.name)
        .await
        .map_err(|source| SecretError::Api {
            namespace: namespace.to_owned(),
            name: r.name.clone(),
            source,
        })?
        .ok_or_else(|| SecretError::Missing {
            field,
            namespace: namespace.to_owned(),
            name: r.name.clone(),
        })?;
    secret
        .data
        .and_then(|mut d| d.remove(&r.key))
        .map(|b| b.0)
        .ok_or_else(|| SecretError::MissingKey {
            field,
            namespace: namespace.to_owned(),
            name: r.name.clone(),
            key: r.key.clone(),
        })
}
