//! The `DmvpnHub` and `DmvpnSpoke` custom resources: what a platform engineer writes, one per
//! cluster (a site). The operator picks the site's gateway node, renders its
//! [`DmvpnNodeSpec`](crate::DmvpnNodeSpec) into a `DmvpnNode`, and reports here.

use core::net::IpAddr;
use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::secret::{KEY_PATTERN, NAME_PATTERN, SecretKeyRef, SecretRef};
use crate::{Identity, IpsecMode, StaticRoute};

/// A hub site (IOS DMVPN hub, an NHRP server of RFC 2332 section 2.3): spokes register with
/// its gateway node.
// kube-derive's printcolumn(...) lists repeat `type_ = ...`, which clippy takes for a
// repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dmvpn.io",
    version = "v1alpha1",
    kind = "DmvpnHub",
    plural = "dmvpnhubs",
    shortname = "dmvh",
    status = "SiteStatus",
    derive = "PartialEq",
    doc = "A DMVPN hub site: the gateway node of this cluster serves NHRP (RFC 2332) to spokes.",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.activeNode"),
    printcolumn(name = "Tunnel", type_ = "string", json_path = ".status.tunnelAddress"),
    printcolumn(name = "NBMA", type_ = "string", json_path = ".status.nbmaAddress"),
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
#[serde(rename_all = "camelCase")]
pub struct DmvpnHubSpec {
    /// What hubs and spokes share.
    #[serde(flatten)]
    pub site: SiteSpec,
    /// Hubs above this one to register with (hierarchical or hub-to-hub designs); usually
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub hubs: Vec<HubRef>,
}

/// A spoke site (IOS DMVPN spoke, an NHRP client): its gateway node registers with the hubs
/// and takes shortcuts to other spokes (DMVPN phase 3).
// kube-derive's printcolumn(...) lists repeat `type_ = ...`, which clippy takes for a
// repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dmvpn.io",
    version = "v1alpha1",
    kind = "DmvpnSpoke",
    plural = "dmvpnspokes",
    shortname = "dmvs",
    status = "SiteStatus",
    derive = "PartialEq",
    doc = "A DMVPN spoke site: the gateway node of this cluster registers with the hubs (RFC 2332).",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.activeNode"),
    printcolumn(name = "Tunnel", type_ = "string", json_path = ".status.tunnelAddress"),
    printcolumn(name = "NBMA", type_ = "string", json_path = ".status.nbmaAddress"),
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
#[serde(rename_all = "camelCase")]
pub struct DmvpnSpokeSpec {
    /// What hubs and spokes share.
    #[serde(flatten)]
    pub site: SiteSpec,
    /// The hubs (NHSs, IOS `ip nhrp nhs ... nbma ...`) to register with, most preferred
    /// first by `priority`.
    #[schemars(length(min = 1, max = 8))]
    pub hubs: Vec<HubRef>,
}

/// The settings hubs and spokes share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteSpec {
    /// The tunnel interface of the gateway node.
    pub tunnel: SiteTunnel,
    /// NHRP (RFC 2332) settings.
    pub nhrp: SiteNhrp,
    /// IPsec protection (IKEv2 RFC 7296, ESP RFC 4303); absent, GRE goes unprotected, for
    /// tests only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<SiteIpsec>,
    /// Which nodes may be the gateway and how their NBMA address is found.
    #[serde(default)]
    pub gateway: Gateway,
    /// The prefixes this site advertises and its static routes.
    #[serde(default)]
    pub routes: SiteRoutes,
}

/// The site's tunnel: one tunnel address, given or taken from a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.address) != has(self.pool)",
    "message": "set exactly one of address (such as 10.1.1.1/24) and pool"
}]))]
pub struct SiteTunnel {
    /// The TUN device's name on the gateway node; default `dmvpn0`.
    #[serde(default = "default_interface")]
    #[schemars(length(min = 1, max = 15), regex(pattern = "^[^/: ]+$"))]
    pub interface: String,
    /// The site's tunnel address with the tunnel subnet's prefix length (IOS
    /// `ip address 10.1.1.1 255.255.255.0` is `10.1.1.1/24`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::interface_address")]
    pub address: Option<IpNet>,
    /// A pool to take the tunnel address from, instead of `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<AddressPool>,
    /// The tunnel MTU (IOS `ip mtu`), 576 to 9000; absent, the agent derives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 576, max = 9000))]
    pub mtu: Option<u16>,
    /// The GRE key (IOS `tunnel key`, RFC 2890 section 2.1), the same on every site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u32>,
}

fn default_interface() -> String {
    "dmvpn0".to_owned()
}

/// A range of tunnel addresses the operator allocates from: the lowest free one not used by
/// another DmvpnHub or DmvpnSpoke of this cluster, kept while the site exists. Sites in
/// other clusters are not visible: give each cluster its own range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressPool {
    /// The tunnel subnet, such as `10.1.1.0/24`.
    #[schemars(schema_with = "crate::schema::prefix")]
    pub subnet: IpNet,
    /// The first address to allocate; default the subnet's first host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub first: Option<IpAddr>,
    /// The last address to allocate; default the subnet's last host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub last: Option<IpAddr>,
}

/// NHRP settings of a site (IOS `ip nhrp ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteNhrp {
    /// The NHRP network (IOS `ip nhrp network-id`), 1 to 4294967295.
    #[schemars(range(min = 1, max = 4_294_967_295_u32))]
    pub network_id: u32,
    /// Seconds registrations stay valid (RFC 2332 section 5.2.0.1 Holding Time); default
    /// 7200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub hold_time: Option<u16>,
    /// Seconds between registrations; default a third of `holdTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub registration_timeout: Option<u16>,
    /// Send redirects (IOS `ip nhrp redirect`); default on for a hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<bool>,
    /// Install shortcuts on redirects (IOS `ip nhrp shortcut`); default on for a spoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortcut: Option<bool>,
    /// Replicate multicast to registered peers (IOS `ip nhrp map multicast dynamic`);
    /// default on for a hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_multicast_dynamic: Option<bool>,
    /// The Secret key (in the operator's namespace) holding the NHRP password (IOS
    /// `ip nhrp authentication`, RFC 2332 section 5.3.4), 1 to 8 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_secret_ref: Option<SecretKeyRef>,
}

/// IPsec settings of a site (IOS `tunnel protection ipsec profile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.preSharedKeySecretRef) != has(self.certificateSecretRef)",
    "message": "set exactly one of preSharedKeySecretRef and certificateSecretRef"
}]))]
pub struct SiteIpsec {
    /// The Secret key holding the pre-shared key (RFC 7296 section 2.15), in the operator's
    /// namespace; with `generate: true` the operator creates it when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_shared_key_secret_ref: Option<PskSecretRef>,
    /// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, `ca.crt`, as cert-manager writes)
    /// in the operator's namespace, for certificate authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_secret_ref: Option<SecretRef>,
    /// The IKE identity (RFC 7296 section 3.5); default the NBMA address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// IKE proposals in strongSwan syntax; default `aes256gcm16-prfsha384-x25519`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 128)))]
    pub ike: Vec<String>,
    /// ESP proposals in strongSwan syntax; default `aes256gcm16`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 128)))]
    pub esp: Vec<String>,
    /// ESP mode (RFC 4301 section 4.1); default transport.
    #[serde(default)]
    pub mode: IpsecMode,
    /// Encapsulate ESP in UDP 4500 (RFC 3948) even without NAT.
    #[serde(default)]
    pub force_udp_encap: bool,
    /// Seconds between dead peer detection checks (RFC 7296 section 1.4), 10 to 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 3600))]
    pub dpd_interval: Option<u16>,
}

/// The Secret key holding a pre-shared key, optionally generated by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PskSecretRef {
    /// The Secret's name, in the operator's namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// The key in the Secret's data; default `psk`.
    #[serde(default = "default_psk_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = KEY_PATTERN))]
    pub key: String,
    /// Create the Secret with a random 32-byte key when it does not exist. Every site needs
    /// the same key: copy the generated Secret to the other clusters.
    #[serde(default)]
    pub generate: bool,
}

/// The default data key of a pre-shared key Secret.
pub const DEFAULT_PSK_KEY: &str = "psk";

fn default_psk_key() -> String {
    DEFAULT_PSK_KEY.to_owned()
}

/// Which nodes may carry the site's tunnel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// Labels a node must carry to be the gateway; empty, any node. One Ready node is
    /// active; when it goes NotReady or away, another takes over.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// How the gateway's NBMA (underlay) address is found.
    #[serde(default)]
    pub nbma_address: NbmaAddress,
}

/// How the gateway's NBMA address (RFC 2332 section 2) is found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.from != 'Annotation' || has(self.annotation)",
     "message": "from: Annotation needs annotation, the node annotation holding the address"},
    {"rule": "self.from != 'Service' || has(self.service)",
     "message": "from: Service needs service, the LoadBalancer Service in front of the hub"}
]))]
pub struct NbmaAddress {
    /// Where the address comes from; default `ExternalIP`.
    #[serde(default)]
    pub from: NbmaSource,
    /// The node annotation holding the address, for `from: Annotation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 317))]
    pub annotation: Option<String>,
    /// The LoadBalancer Service whose ingress address peers use, for `from: Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
    /// A fixed address used whatever `from` says, for a node behind a static NAT.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "override")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub override_address: Option<IpAddr>,
}

/// The source of a gateway's NBMA address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NbmaSource {
    /// The node's `ExternalIP`, else its `InternalIP`.
    #[default]
    ExternalIP,
    /// The node's `InternalIP`.
    InternalIP,
    /// A node annotation.
    Annotation,
    /// A LoadBalancer Service's ingress IP (a hub behind a load balancer); the agent still
    /// sends from the node's `InternalIP`.
    Service,
}

/// A Service by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// The Service's namespace.
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub namespace: String,
    /// The Service's name.
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub name: String,
}

/// The site's routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteRoutes {
    /// The prefixes this site advertises (registered with the hubs, RFC 2332 section
    /// 5.2.3). Absent, the operator advertises the cluster's pod CIDRs (`Node.spec.podCIDRs`)
    /// and service CIDRs (`ServiceCIDR` objects); CNIs that do not fill `podCIDRs` (Calico,
    /// Cilium cluster-pool IPAM) need them written here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_prefixes")]
    pub advertise: Option<Vec<IpNet>>,
    /// Static routes into the tunnel (IOS `ip route <prefix> <tunnel next hop>`).
    #[serde(default, rename = "static", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub static_routes: Vec<StaticRoute>,
}

/// A hub a spoke registers with (IOS `ip nhrp nhs <tunnel> nbma <address|name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.nbmaAddress) != has(self.host)",
    "message": "set exactly one of nbmaAddress and host"
}]))]
pub struct HubRef {
    /// The hub's tunnel address.
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub tunnel_address: IpAddr,
    /// The hub's NBMA address (its DmvpnHub's `status.nbmaAddress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub nbma_address: Option<IpAddr>,
    /// The hub's DNS name, resolved by the operator, instead of `nbmaAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = "^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")
    )]
    pub host: Option<String>,
    /// The hub's preference: 0, the default, is the most preferred.
    #[serde(default)]
    pub priority: u8,
}

/// What the operator reports about a site.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatus {
    /// The `metadata.generation` the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (a DmvpnNode is rendered and its agent reports Ready) and `Degraded`, with
    /// reasons such as `NoMatchingNode`, `SecretMissing` and `AddressConflict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The gateway node now carrying the tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_node: Option<String>,
    /// The site's tunnel address, given or allocated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::interface_address")]
    pub tunnel_address: Option<IpNet>,
    /// The gateway's NBMA address: what the spokes' `hubs[].nbmaAddress` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub nbma_address: Option<IpAddr>,
}
