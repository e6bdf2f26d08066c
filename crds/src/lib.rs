//! The configuration contract of the kube-dmvpn agent: [`DmvpnNodeSpec`], read by
//! `dmvpn-agent run --config FILE.yaml` and, with the Kubernetes layer, the spec of a
//! `DmvpnNode` the operator renders, so that both read exactly one type.
//!
//! The sections mirror a Cisco IOS DMVPN configuration (see `docs/ios-mapping.md`):
//!
//! | section | IOS |
//! |---|---|
//! | [`TunnelSpec`] | `interface Tunnel0`, `ip address`, `ip mtu`, `tunnel key`, `tunnel mode gre multipoint` |
//! | [`UnderlaySpec`] | `tunnel source` |
//! | [`NhrpSpec`] | `ip nhrp network-id`, `authentication`, `holdtime`, `nhs`, `map`, `redirect`, `shortcut` (RFC 2332) |
//! | [`IpsecSpec`] | `crypto ikev2 ...`, `crypto ipsec transform-set`, `tunnel protection ipsec profile` (RFC 7296, RFC 4303) |
//! | [`RoutesSpec`] | `ip route ... <tunnel next hop>`, and the site prefixes a routing protocol would carry |
//! | [`AdminSpec`], [`MetricsSpec`] | the exec prompt (`show dmvpn`) and SNMP, here a Unix socket and Prometheus |
//!
//! Keys are camelCase. Unknown keys and invalid values are errors that name the field path
//! and the fix ([`ConfigError`], [`Issue`]); semantic rules are checked after parsing by
//! [`DmvpnNodeSpec::validate`], which reports every problem at once.

use std::io::Read;
use std::path::Path;

use ipnet::IpNet;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod admin;
mod de;
mod error;
mod ipsec;
mod metrics;
mod nhrp;
mod node;
mod routes;
mod schema;
mod secret;
mod site;
mod tunnel;
mod underlay;

pub use admin::{AdminSpec, DEFAULT_ADMIN_SOCKET};
pub use error::{ConfigError, Issue};
pub use ipsec::{
    DEFAULT_ESP_PROPOSAL, DEFAULT_IKE_PROPOSAL, Identity, IpsecMode, IpsecSpec,
    MAX_PRE_SHARED_KEY_LEN, PreSharedKey,
};
pub use metrics::{DEFAULT_METRICS_PORT, MetricsSpec};
pub use nhrp::{DEFAULT_HOLD_TIME, MAX_AUTHENTICATION_LEN, NhrpAuthentication, NhrpSpec, NhsSpec};
pub use node::{
    DmvpnNodeStatus, IpsecStatus, NhrpStatus, NhsStatus, PeerState, PeerStatus, PeerType,
};
pub use routes::{RoutesSpec, StaticRoute};
pub use secret::{
    KEY_PATTERN, NAME_PATTERN, SecretKeyRef, SecretRef, TLS_CA_KEY, TLS_CERT_KEY,
    TLS_PRIVATE_KEY_KEY, is_data_key, is_object_name,
};
pub use site::{
    AddressPool, DEFAULT_PSK_KEY, DmvpnHub, DmvpnHubSpec, DmvpnSpoke, DmvpnSpokeSpec, Gateway,
    HubRef, NbmaAddress, NbmaSource, PskSecretRef, ServiceRef, SiteIpsec, SiteNhrp, SiteRoutes,
    SiteSpec, SiteStatus, SiteTunnel,
};
pub use tunnel::{MAX_MTU, MIN_MTU_IPV4, MIN_MTU_IPV6, TunnelSpec};
pub use underlay::UnderlaySpec;

/// The configuration of one DMVPN router: the agent's config file, and the spec of a
/// `DmvpnNode`, one per gateway node, rendered by the operator (issue 6).
// kube-derive's printcolumn(...) lists repeat `type_ = ...`, which clippy takes for a
// repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dmvpn.io",
    version = "v1alpha1",
    kind = "DmvpnNode",
    plural = "dmvpnnodes",
    shortname = "dmvn",
    status = "DmvpnNodeStatus",
    derive = "PartialEq",
    doc = "The DMVPN router of one gateway node: the agent's configuration, rendered by the operator, and the agent's report.",
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.role"),
    printcolumn(name = "Tunnel", type_ = "string", json_path = ".spec.tunnel.address"),
    printcolumn(name = "NBMA", type_ = "string", json_path = ".spec.underlay.address"),
    printcolumn(
        name = "Peers",
        type_ = "integer",
        json_path = ".status.nhrp.registeredPeers"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DmvpnNodeSpec {
    /// Hub (NHRP server) or spoke (NHRP client).
    pub role: Role,
    /// The tunnel interface (`interface Tunnel0`).
    pub tunnel: TunnelSpec,
    /// The underlay this router sends from (`tunnel source`).
    pub underlay: UnderlaySpec,
    /// NHRP (`ip nhrp ...`).
    pub nhrp: NhrpSpec,
    /// IPsec (`tunnel protection ipsec profile`); absent, GRE goes unprotected, which is for
    /// tests only: [`DmvpnNodeSpec::is_insecure`] tells the agent to warn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<IpsecSpec>,
    /// Advertised prefixes and static routes.
    #[serde(default)]
    pub routes: RoutesSpec,
    /// The admin socket for `dmvpnctl`.
    #[serde(default)]
    pub admin: AdminSpec,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSpec,
}

/// Whether the router is a DMVPN hub or spoke; it sets the defaults of the phase 3 switches
/// (a hub redirects and replicates multicast, a spoke takes shortcuts), as in Cisco's phase 3
/// configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// A Next Hop Server (RFC 2332 section 2.3): spokes register with it.
    Hub,
    /// A Next Hop Client: registers with its NHSs (`ip nhrp nhs`).
    Spoke,
}

/// What the sections' checks need from the rest of the spec.
pub(crate) struct Context {
    pub(crate) role: Role,
    pub(crate) tunnel: IpNet,
    pub(crate) underlay: core::net::IpAddr,
}

impl Context {
    /// A peer's tunnel address to show in messages: the subnet's first host other than ours.
    pub(crate) fn peer_example(&self) -> core::net::IpAddr {
        let own = self.tunnel.addr();
        self.tunnel.hosts().find(|&a| a != own).unwrap_or(own)
    }
}

/// The largest configuration file read: a config is a page, not a data set.
const MAX_CONFIG_LEN: u64 = 1 << 20;

impl DmvpnNodeSpec {
    /// Parses and validates a YAML configuration file's text: Secret references are refused
    /// there, since they work only in a `DmvpnNode`. Relative file names (such as
    /// `ipsec.preSharedKeyFile`) stay as written; [`DmvpnNodeSpec::load`] resolves them.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with the first parse problem, or every validation problem.
    pub fn from_yaml_str(yaml: &str) -> Result<Self, ConfigError> {
        let spec = Self::parse(yaml)?;
        let mut issues = spec.issues();
        spec.standalone_issues(&mut issues);
        if issues.is_empty() {
            Ok(spec)
        } else {
            Err(ConfigError::Invalid { file: None, issues })
        }
    }

    /// The Secret references only a `DmvpnNode` may hold: a configuration file names files.
    fn standalone_issues(&self, out: &mut Vec<Issue>) {
        let refs = [
            (
                "nhrp.authenticationSecretRef",
                self.nhrp.authentication_secret_ref.is_some(),
                "nhrp.authentication",
            ),
            (
                "ipsec.preSharedKeySecretRef",
                self.ipsec
                    .as_ref()
                    .is_some_and(|i| i.pre_shared_key_secret_ref.is_some()),
                "ipsec.preSharedKeyFile",
            ),
            (
                "ipsec.certificateSecretRef",
                self.ipsec
                    .as_ref()
                    .is_some_and(|i| i.certificate_secret_ref.is_some()),
                "ipsec.certificateFile, privateKeyFile and caFile",
            ),
        ];
        for (path, set, instead) in refs {
            if set {
                out.push(Issue::new(
                    path,
                    format!("Secret references work only under Kubernetes (a DmvpnNode): in a configuration file use {instead}"),
                ));
            }
        }
    }

    /// Reads, parses and validates a configuration file, and resolves relative file names in
    /// it against the file's folder.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read or exceeds 1 MiB,
    /// [`ConfigError::Invalid`] naming the file otherwise.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let mut yaml = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_LEN + 1).read_to_string(&mut yaml))
            .map_err(read_error)?;
        if yaml.len() as u64 > MAX_CONFIG_LEN {
            return Err(read_error(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "larger than 1 MiB, the most a configuration may be",
            )));
        }
        let mut spec = Self::from_yaml_str(&yaml).map_err(|e| e.in_file(path.to_owned()))?;
        if let Some(ipsec) = &mut spec.ipsec {
            ipsec.resolve_paths(path.parent().unwrap_or(Path::new("")));
        }
        Ok(spec)
    }

    fn parse(yaml: &str) -> Result<Self, ConfigError> {
        let mut options = serde_saphyr::Options::default();
        // Messages carry the field path instead of a source excerpt, which could show a secret.
        options.with_snippet = false;
        // `yes`/`no`/`on` are strings, not booleans, as in YAML 1.2.
        options.strict_booleans = true;
        let mut track = serde_path_to_error::Track::new();
        let parsed = serde_saphyr::with_deserializer_from_str_with_options(yaml, options, |d| {
            Self::deserialize(serde_path_to_error::Deserializer::new(d, &mut track))
        });
        parsed.map_err(|e| {
            let mut message = e.without_snippet().to_string();
            if let Some(valid) = error::did_you_mean(&message) {
                // Before the location the YAML crate appends, if any.
                let at = message.find(" at line ").unwrap_or(message.len());
                message.insert_str(at, &format!(" (did you mean `{valid}`?)"));
            }
            ConfigError::Invalid {
                file: None,
                issues: vec![Issue::new(track.path().to_string(), message)],
            }
        })
    }

    /// Checks the rules a schema cannot say: role-specific fields, addresses inside the
    /// tunnel subnet, ranges that depend on the address family, refused algorithms. Secret
    /// references (a `DmvpnNode`'s spec) are accepted here; [`DmvpnNodeSpec::from_yaml_str`]
    /// refuses them in a configuration file.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] listing every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issues = self.issues();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { file: None, issues })
        }
    }

    fn issues(&self) -> Vec<Issue> {
        let cx = Context {
            role: self.role,
            tunnel: self.tunnel.address,
            underlay: self.underlay.address,
        };
        let mut issues = Vec::new();
        let subnet_usable = self.tunnel.check(&mut issues);
        self.underlay.check(&mut issues);
        self.nhrp.check(&cx, subnet_usable, &mut issues);
        if let Some(ipsec) = &self.ipsec {
            ipsec.check(&mut issues);
        }
        if subnet_usable {
            self.routes.check(&cx, &mut issues);
        }
        self.admin.check(&mut issues);
        self.metrics.check(&mut issues);
        issues
    }

    /// Whether GRE goes unprotected (no `ipsec` section): allowed for tests, and the agent
    /// logs a warning.
    pub fn is_insecure(&self) -> bool {
        self.ipsec.is_none()
    }
}

/// The header of every generated CRD file.
const CRD_HEADER: &str = "# Generated by `cargo run -p dmvpn-crds --bin crdgen` from the Rust types in crds/src: do not edit.\n";

/// The CustomResourceDefinitions of kube-dmvpn as YAML files: `(file name, contents)` for
/// DmvpnHub, DmvpnSpoke and DmvpnNode, as the `crdgen` binary writes them.
///
/// # Errors
/// When a CRD does not serialize, which the types rule out.
pub fn crd_files() -> Result<Vec<(&'static str, String)>, serde_saphyr::ser_error::Error> {
    use kube::CustomResourceExt;
    [
        ("dmvpn.io_dmvpnhubs.yaml", DmvpnHub::crd()),
        ("dmvpn.io_dmvpnspokes.yaml", DmvpnSpoke::crd()),
        ("dmvpn.io_dmvpnnodes.yaml", DmvpnNode::crd()),
    ]
    .into_iter()
    .map(|(name, crd)| {
        Ok((
            name,
            format!("{CRD_HEADER}{}", serde_saphyr::to_string(&crd)?),
        ))
    })
    .collect()
}
