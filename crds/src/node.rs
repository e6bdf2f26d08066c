//! The `DmvpnNode` custom resource: one per gateway node, its spec exactly the agent's
//! [`DmvpnNodeSpec`](crate::DmvpnNodeSpec) (rendered by the operator), its status written by
//! the gateway's agent so that `kubectl get dmvpnnodes` reads like IOS `show dmvpn`.

use core::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the gateway agent reports about its DMVPN router, at most every 5 seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DmvpnNodeStatus {
    /// The `metadata.generation` of the spec the agent runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the router runs the spec and, for a spoke, is registered with an NHS) and
    /// `Degraded` (some peer or NHS is down), with CamelCase reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// One element per peer, as `dmvpnctl show dmvpn -o json` lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerStatus>,
    /// The NHRP summary (RFC 2332 cache and registrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhrp: Option<NhrpStatus>,
    /// The IPsec summary (RFC 7296 IKE SAs, RFC 4303 ESP SAs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<IpsecStatus>,
    /// The prefixes reachable through the overlay, which route agents on the other nodes of
    /// the cluster route via this gateway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::prefixes")]
    pub remote_prefixes: Vec<IpNet>,
    /// When the agent wrote this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Time>,
}

/// One DMVPN peer, the fields of `dmvpnctl show dmvpn -o json` (IOS `show dmvpn` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// The peer's tunnel address.
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub tunnel_address: IpAddr,
    /// The peer's NBMA (underlay) address as seen, after NAT.
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub nbma_address: IpAddr,
    /// The link state (IOS `State` column).
    pub state: PeerState,
    /// How the peer is known (IOS attribute `S`, `D`, or a shortcut).
    #[serde(rename = "type")]
    pub kind: PeerType,
    /// Seconds in the current state (IOS `UpDn Tm`).
    pub uptime_seconds: u64,
    /// NHRP entries through the peer (IOS `# Ent`).
    #[serde(default)]
    pub entries: u32,
    /// Whether the peer sits behind NAT (IOS attribute `N`).
    #[serde(default)]
    pub nat: bool,
}

/// The state of a DMVPN peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PeerState {
    /// Protected and NHRP registered or resolved.
    Up,
    /// IKE negotiates.
    Ike,
    /// The ESP SA stands but NHRP has not registered.
    Nhrp,
    /// Neither an IKE SA nor an ESP SA.
    Down,
}

/// How a DMVPN peer is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PeerType {
    /// A configured NHS.
    Static,
    /// Registered with this hub (RFC 2332 section 5.2.3).
    Dynamic,
    /// Resolved after a redirect (DMVPN phase 3).
    Shortcut,
}

/// The NHRP summary of a router.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NhrpStatus {
    /// Entries in the NHRP cache.
    pub entries: u32,
    /// For a hub, the clients registered with it; for a spoke, the NHSs it is registered
    /// with.
    pub registered_peers: u32,
    /// Shortcut routes installed after redirects.
    pub shortcuts: u32,
    /// The NHSs of a spoke and their registration state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<NhsStatus>,
}

/// One NHS a spoke registers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NhsStatus {
    /// The NHS's tunnel address.
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub tunnel_address: IpAddr,
    /// The registration state, such as `registered` or `pending`.
    pub state: String,
}

/// The IPsec summary of a router.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpsecStatus {
    /// Established IKE SAs.
    pub ike_sas: u32,
    /// Established Child (ESP) SAs, each direction pair counted once.
    pub child_sas: u32,
}
