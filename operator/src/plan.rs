//! The operator's pure planning: which node carries a site's tunnel, with which addresses,
//! and the `DmvpnNodeSpec` rendered for it. No Kubernetes calls here: the controller gathers
//! the cluster's state into a [`SiteInput`] and applies the [`Plan`].

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};

use dmvpn_crds::{
    AddressPool, DmvpnNodeSpec, Gateway, HubRef, IpsecSpec, MetricsSpec, NbmaSource, NhrpSpec,
    NhsSpec, Role, RoutesSpec, SecretKeyRef, SecretRef, SiteSpec, TunnelSpec, UnderlaySpec,
};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Service};

/// What the planner needs to know of a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// The `Ready` condition is `True` and the node is not being deleted.
    pub ready: bool,
    /// The first `InternalIP` of `status.addresses`.
    pub internal_ip: Option<IpAddr>,
    /// The first `ExternalIP` of `status.addresses`.
    pub external_ip: Option<IpAddr>,
    /// `spec.podCIDRs` (else `spec.podCIDR`).
    pub pod_cidrs: Vec<IpNet>,
}

impl NodeView {
    /// Reads the fields the planner uses from a Node; unparsable addresses are ignored.
    pub fn from_node(node: &Node) -> Self {
        let status = node.status.as_ref();
        let ready = node.metadata.deletion_timestamp.is_none()
            && status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let address = |kind: &str| {
            status
                .and_then(|s| s.addresses.as_ref())
                .into_iter()
                .flatten()
                .filter(|a| a.type_ == kind)
                .find_map(|a| a.address.parse().ok())
        };
        let spec = node.spec.as_ref();
        let mut pod_cidrs: Vec<IpNet> = spec
            .and_then(|s| s.pod_cidrs.as_ref())
            .into_iter()
            .flatten()
            .chain(spec.and_then(|s| s.pod_cidr.as_ref()))
            .filter_map(|c| c.parse().ok())
            .collect();
        pod_cidrs.sort();
        pod_cidrs.dedup();
        NodeView {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            annotations: node.metadata.annotations.clone().unwrap_or_default(),
            ready,
            internal_ip: address("InternalIP"),
            external_ip: address("ExternalIP"),
            pod_cidrs,
        }
    }

    fn matches(&self, selector: &BTreeMap<String, String>) -> bool {
        selector
            .iter()
            .all(|(k, v)| self.labels.get(k).is_some_and(|l| l == v))
    }
}

/// Why a site cannot be planned: each becomes the reason of a `Ready=False` condition and a
/// Warning event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// No Ready node matches `gateway.nodeSelector`.
    #[error(
        "no Ready node matches gateway.nodeSelector {0}: label a node, such as `kubectl label node NAME dmvpn.io/gateway=true`"
    )]
    NoMatchingNode(String),
    /// A referenced Secret or its key is absent from the operator's namespace.
    #[error(
        "Secret {namespace}/{name} {what}: create it, or set generate: true for a pre-shared key"
    )]
    SecretMissing {
        /// The operator's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// What is missing.
        what: String,
    },
    /// Another site of this cluster uses the same tunnel address.
    #[error("tunnel address {address} is also {other}'s: give each site its own")]
    AddressConflict {
        /// The address.
        address: IpAddr,
        /// The other site, `DmvpnHub/name` or `DmvpnSpoke/name`.
        other: String,
    },
    /// The pool has no free address.
    #[error("pool {0} has no free address: widen it or free one")]
    PoolExhausted(String),
    /// The gateway's NBMA address cannot be found.
    #[error("no NBMA address for node {node}: {why}")]
    NbmaUnknown {
        /// The gateway node.
        node: String,
        /// What was looked for.
        why: String,
    },
    /// A hub's DNS name does not resolve.
    #[error("hub {0} does not resolve: check the name or write nbmaAddress")]
    HubUnresolved(String),
    /// The rendered spec fails the agent's validation.
    #[error("the rendered DmvpnNode spec is invalid: {0}")]
    InvalidSpec(String),
}

impl Problem {
    /// The CamelCase condition reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::NoMatchingNode(_) => "NoMatchingNode",
            Problem::SecretMissing { .. } => "SecretMissing",
            Problem::AddressConflict { .. } => "AddressConflict",
            Problem::PoolExhausted(_) => "PoolExhausted",
            Problem::NbmaUnknown { .. } => "NbmaAddressUnknown",
            Problem::HubUnresolved(_) => "HubUnresolved",
            Problem::InvalidSpec(_) => "InvalidSpec",
        }
    }
}

/// Picks the gateway node: `current` while it is Ready and still matches, else the first
/// Ready matching node by name (so that replicas and restarts agree).
///
/// # Errors
/// [`Problem::NoMatchingNode`].
pub fn choose_gateway<'a>(
    nodes: &'a [NodeView],
    gateway: &Gateway,
    current: Option<&str>,
) -> Result<&'a NodeView, Problem> {
    let mut candidates: Vec<&NodeView> = nodes
        .iter()
        .filter(|n| n.ready && n.matches(&gateway.node_selector))
        .collect();
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(keep) = current.and_then(|c| candidates.iter().find(|n| n.name == c)) {
        return Ok(keep);
    }
    candidates.first().copied().ok_or_else(|| {
        let selector: Vec<String> = gateway
            .node_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        Problem::NoMatchingNode(format!("{{{}}}", selector.join(",")))
    })
}

/// The gateway's addresses: `underlay` the agent sends from (`underlay.address`), `nbma`
/// the one peers reach it at (`status.nbmaAddress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbmaAddresses {
    /// The address the agent binds and registers.
    pub underlay: IpAddr,
    /// The address peers use, after any NAT or load balancer.
    pub nbma: IpAddr,
}

/// Finds the gateway's addresses as `gateway.nbmaAddress` says. With `override` or
/// `from: Service` the agent still sends from the node's `InternalIP`.
///
/// # Errors
/// [`Problem::NbmaUnknown`] naming what was looked for.
pub fn nbma_addresses(
    gateway: &Gateway,
    node: &NodeView,
    service: Option<&Service>,
) -> Result<NbmaAddresses, Problem> {
    let spec = &gateway.nbma_address;
    let unknown = |why: String| Problem::NbmaUnknown {
        node: node.name.clone(),
        why,
    };
    let local = || node.internal_ip.or(node.external_ip);
    let (nbma, behind_nat) = if let Some(a) = spec.override_address {
        (a, true)
    } else {
        match spec.from {
            NbmaSource::ExternalIP => (
                node.external_ip.or(node.internal_ip).ok_or_else(|| {
                    unknown("the node has neither ExternalIP nor InternalIP".into())
                })?,
                false,
            ),
            NbmaSource::InternalIP => (
                node.internal_ip
                    .ok_or_else(|| unknown("the node has no InternalIP".into()))?,
                false,
            ),
            NbmaSource::Annotation => {
                let key = spec.annotation.as_deref().unwrap_or_default();
                let value = node
                    .annotations
                    .get(key)
                    .ok_or_else(|| unknown(format!("the node has no annotation {key}")))?;
                let a = value.trim().parse().map_err(|_| {
                    unknown(format!(
                        "annotation {key} holds `{value}`, not an IP address"
                    ))
                })?;
                (a, false)
            }
            NbmaSource::Service => {
                let name = spec
                    .service
                    .as_ref()
                    .map(|s| format!("{}/{}", s.namespace, s.name))
                    .unwrap_or_default();
                let ingress = service
                    .and_then(|s| s.status.as_ref())
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .into_iter()
                    .flatten()
                    .find_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()));
                let a = ingress.ok_or_else(|| {
                    unknown(format!("Service {name} has no LoadBalancer ingress IP yet"))
                })?;
                (a, true)
            }
        }
    };
    let underlay = if behind_nat {
        local().unwrap_or(nbma)
    } else {
        nbma
    };
    Ok(NbmaAddresses { underlay, nbma })
}

/// Allocates a tunnel address from `pool`: `current` while it is in the range and unused by
/// others, else the lowest free one. Network and broadcast addresses are never given.
///
/// # Errors
/// [`Problem::PoolExhausted`].
pub fn allocate(
    pool: &AddressPool,
    used: &BTreeSet<IpAddr>,
    current: Option<IpNet>,
) -> Result<IpNet, Problem> {
    let subnet = pool.subnet.trunc();
    let first = pool.first.unwrap_or(subnet.network());
    let last = pool.last.unwrap_or(subnet.broadcast());
    let usable = |a: IpAddr| {
        subnet.contains(&a)
            && a >= first
            && a <= last
            && a != subnet.network()
            && !(a.is_ipv4() && a == subnet.broadcast())
            && !used.contains(&a)
    };
    let with_len = |a: IpAddr| IpNet::new(a, subnet.prefix_len()).ok();
    if let Some(c) = current
        && c.prefix_len() == subnet.prefix_len()
        && usable(c.addr())
    {
        return Ok(c);
    }
    // Host bits are few enough here: a pool wider than a /16 of hosts is searched from its
    // start only as far as needed.
    subnet
        .hosts()
        .find(|&a| usable(a))
        .and_then(with_len)
        .ok_or_else(|| Problem::PoolExhausted(subnet.to_string()))
}

/// The prefixes a site advertises: `routes.advertise` when written, else the cluster's pod
/// and service CIDRs, of the tunnel's address family and clear of the tunnel subnet.
pub fn advertised(
    site: &SiteSpec,
    nodes: &[NodeView],
    service_cidrs: &[IpNet],
    tunnel: IpNet,
) -> Vec<IpNet> {
    if let Some(given) = &site.routes.advertise {
        return given.clone();
    }
    let subnet = tunnel.trunc();
    let mut out: Vec<IpNet> = nodes
        .iter()
        .flat_map(|n| n.pod_cidrs.iter().copied())
        .chain(service_cidrs.iter().copied())
        .map(|p| p.trunc())
        .filter(|p| p.addr().is_ipv4() == tunnel.addr().is_ipv4())
        .filter(|p| !p.contains(&subnet) && !subnet.contains(p))
        .collect();
    out.sort();
    out.dedup();
    IpNet::aggregate(&out)
}

/// What the operator knows of the cluster for one site.
#[derive(Debug, Clone)]
pub struct SiteInput<'a> {
    /// Hub or spoke.
    pub role: Role,
    /// The site's spec.
    pub site: &'a SiteSpec,
    /// The hubs to register with.
    pub hubs: &'a [HubRef],
    /// The gateway node now in the site's status.
    pub current_node: Option<&'a str>,
    /// The tunnel address now in the site's status.
    pub current_tunnel: Option<IpNet>,
    /// Every node of the cluster.
    pub nodes: &'a [NodeView],
    /// The Service of `from: Service`, if any.
    pub service: Option<&'a Service>,
    /// The cluster's service CIDRs, where listable.
    pub service_cidrs: &'a [IpNet],
    /// The tunnel addresses of the cluster's other sites, with their `Kind/name`.
    pub other_sites: &'a [(String, IpAddr)],
    /// The Secrets of the operator's namespace: name to data keys.
    pub secrets: &'a BTreeMap<String, BTreeSet<String>>,
    /// The operator's namespace, for messages.
    pub namespace: &'a str,
    /// Hub DNS names resolved by the controller.
    pub resolved: &'a BTreeMap<String, IpAddr>,
    /// The agents' metrics listener (`spec.metrics.listen`).
    pub metrics_listen: core::net::SocketAddr,
}

/// The planned state of a site.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The gateway node, the DmvpnNode's name.
    pub node: String,
    /// The gateway node's InternalIP (the `dmvpn.io/gateway-address` annotation).
    pub gateway_address: Option<IpAddr>,
    /// The tunnel address.
    pub tunnel: IpNet,
    /// The NBMA addresses.
    pub addresses: NbmaAddresses,
    /// The rendered spec.
    pub spec: DmvpnNodeSpec,
}

/// Plans a site: gateway, addresses, Secrets present, rendered and validated spec.
///
/// # Errors
/// The first [`Problem`] found.
pub fn plan(input: &SiteInput<'_>) -> Result<Plan, Problem> {
    let site = input.site;
    let node = choose_gateway(input.nodes, &site.gateway, input.current_node)?;
    check_secrets(input)?;
    let tunnel = match (&site.tunnel.address, &site.tunnel.pool) {
        (Some(a), _) => *a,
        (None, Some(pool)) => {
            let used: BTreeSet<IpAddr> = input
                .other_sites
                .iter()
                .map(|(_, a)| *a)
                .chain(input.hubs.iter().map(|h| h.tunnel_address))
                .collect();
            allocate(pool, &used, input.current_tunnel)?
        }
        (None, None) => {
            return Err(Problem::InvalidSpec(
                "tunnel: set address or pool".to_owned(),
            ));
        }
    };
    if let Some((other, address)) = input.other_sites.iter().find(|(_, a)| *a == tunnel.addr()) {
        return Err(Problem::AddressConflict {
            address: *address,
            other: other.clone(),
        });
    }
    let addresses = nbma_addresses(&site.gateway, node, input.service)?;
    let servers = input
        .hubs
        .iter()
        .map(|h| {
            let nbma = match (&h.nbma_address, &h.host) {
                (Some(a), _) => Some(*a),
                (None, Some(host)) => input.resolved.get(host).copied(),
                (None, None) => None,
            };
            let nbma = nbma.ok_or_else(|| {
                Problem::HubUnresolved(
                    h.host
                        .clone()
                        .unwrap_or_else(|| h.tunnel_address.to_string()),
                )
            })?;
            Ok(NhsSpec {
                tunnel_address: h.tunnel_address,
                nbma_address: nbma,
                priority: h.priority,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let spec = render(input, tunnel, addresses.underlay, servers);
    spec.validate()
        .map_err(|e| Problem::InvalidSpec(e.to_string()))?;
    Ok(Plan {
        node: node.name.clone(),
        gateway_address: node.internal_ip.or(node.external_ip),
        tunnel,
        addresses,
        spec,
    })
}

fn check_secrets(input: &SiteInput<'_>) -> Result<(), Problem> {
    let site = input.site;
    let mut wanted: Vec<(&str, Vec<&str>)> = Vec::new();
    if let Some(r) = &site.nhrp.authentication_secret_ref {
        wanted.push((&r.name, vec![&r.key]));
    }
    if let Some(ipsec) = &site.ipsec {
        if let Some(r) = &ipsec.pre_shared_key_secret_ref {
            wanted.push((&r.name, vec![&r.key]));
        }
        if let Some(r) = &ipsec.certificate_secret_ref {
            wanted.push((
                &r.name,
                vec![
                    dmvpn_crds::TLS_CERT_KEY,
                    dmvpn_crds::TLS_PRIVATE_KEY_KEY,
                    dmvpn_crds::TLS_CA_KEY,
                ],
            ));
        }
    }
    for (name, keys) in wanted {
        let missing = |what: String| Problem::SecretMissing {
            namespace: input.namespace.to_owned(),
            name: name.to_owned(),
            what,
        };
        let Some(present) = input.secrets.get(name) else {
            return Err(missing("does not exist".to_owned()));
        };
        if let Some(key) = keys.iter().find(|k| !present.contains(**k)) {
            return Err(missing(format!("has no key {key}")));
        }
    }
    Ok(())
}

fn render(
    input: &SiteInput<'_>,
    tunnel: IpNet,
    underlay: IpAddr,
    servers: Vec<NhsSpec>,
) -> DmvpnNodeSpec {
    let site = input.site;
    let nhrp = &site.nhrp;
    let ipsec = site.ipsec.as_ref().map(|i| IpsecSpec {
        pre_shared_key_file: None,
        certificate_file: None,
        private_key_file: None,
        ca_file: None,
        pre_shared_key_secret_ref: i.pre_shared_key_secret_ref.as_ref().map(|r| SecretKeyRef {
            name: r.name.clone(),
            key: r.key.clone(),
        }),
        certificate_secret_ref: i.certificate_secret_ref.as_ref().map(|r| SecretRef {
            name: r.name.clone(),
        }),
        identity: i.identity.clone(),
        ike: if i.ike.is_empty() {
            vec![dmvpn_crds::DEFAULT_IKE_PROPOSAL.to_owned()]
        } else {
            i.ike.clone()
        },
        esp: if i.esp.is_empty() {
            vec![dmvpn_crds::DEFAULT_ESP_PROPOSAL.to_owned()]
        } else {
            i.esp.clone()
        },
        mode: i.mode,
        force_udp_encap: i.force_udp_encap,
        dpd_interval: i.dpd_interval,
    });
    DmvpnNodeSpec {
        role: input.role,
        tunnel: TunnelSpec {
            interface: site.tunnel.interface.clone(),
            address: tunnel,
            mtu: site.tunnel.mtu,
            key: site.tunnel.key,
        },
        underlay: UnderlaySpec { address: underlay },
        nhrp: NhrpSpec {
            network_id: nhrp.network_id,
            authentication: None,
            authentication_secret_ref: nhrp.authentication_secret_ref.clone(),
            hold_time: nhrp.hold_time.unwrap_or(dmvpn_crds::DEFAULT_HOLD_TIME),
            registration_timeout: nhrp.registration_timeout,
            redirect: nhrp.redirect,
            map_multicast_dynamic: nhrp.map_multicast_dynamic,
            servers,
            shortcut: nhrp.shortcut,
        },
        ipsec,
        routes: RoutesSpec {
            advertise: advertised(site, input.nodes, input.service_cidrs, tunnel),
            static_routes: site.routes.static_routes.clone(),
        },
        admin: Default::default(),
        metrics: MetricsSpec {
            listen: input.metrics_listen,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use dmvpn_crds::{DmvpnHubSpec, DmvpnSpokeSpec};

    fn node(name: &str, ready: bool, labels: &[(&str, &str)]) -> NodeView {
        NodeView {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            annotations: BTreeMap::new(),
            ready,
            internal_ip: Some(format!("198.18.1.{}", name.len()).parse().unwrap()),
            external_ip: None,
            pod_cidrs: vec![format!("10.244.{}.0/24", name.len()).parse().unwrap()],
        }
    }

    fn gateway(selector: &[(&str, &str)]) -> Gateway {
        Gateway {
            node_selector: selector
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Gateway::default()
        }
    }

    fn hub_spec() -> DmvpnHubSpec {
        serde_json::from_value(serde_json::json!({
            "tunnel": {"address": "10.1.1.1/24"},
            "nhrp": {"networkId": 1, "authenticationSecretRef": {"name": "auth", "key": "password"}},
            "ipsec": {"preSharedKeySecretRef": {"name": "psk"}},
            "gateway": {"nodeSelector": {"gw": "yes"}}
        }))
        .unwrap()
    }

    fn spoke_spec() -> DmvpnSpokeSpec {
        serde_json::from_value(serde_json::json!({
            "tunnel": {"pool": {"subnet": "10.1.1.0/24", "first": "10.1.1.10"}},
            "nhrp": {"networkId": 1},
            "ipsec": {"preSharedKeySecretRef": {"name": "psk", "key": "k"}},
            "hubs": [
                {"tunnelAddress": "10.1.1.1", "nbmaAddress": "198.18.0.1"},
                {"tunnelAddress": "10.1.1.2", "host": "hub2.example.net", "priority": 5}
            ]
        }))
        .unwrap()
    }

    fn secrets() -> BTreeMap<String, BTreeSet<String>> {
        [("psk", &["psk", "k"][..]), ("auth", &["password"][..])]
            .into_iter()
            .map(|(n, keys)| (n.to_owned(), keys.iter().map(|k| (*k).to_owned()).collect()))
            .collect()
    }

    struct Fixture {
        nodes: Vec<NodeView>,
        secrets: BTreeMap<String, BTreeSet<String>>,
        resolved: BTreeMap<String, IpAddr>,
        others: Vec<(String, IpAddr)>,
        cidrs: Vec<IpNet>,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                nodes: vec![
                    node("n1", true, &[("gw", "yes")]),
                    node("node2", true, &[("gw", "yes")]),
                    node("n3", true, &[]),
                ],
                secrets: secrets(),
                resolved: [("hub2.example.net".to_owned(), "198.18.0.2".parse().unwrap())]
                    .into_iter()
                    .collect(),
                others: vec![],
                cidrs: vec!["10.96.0.0/16".parse().unwrap()],
            }
        }

        fn input<'a>(
            &'a self,
            role: Role,
            site: &'a SiteSpec,
            hubs: &'a [HubRef],
        ) -> SiteInput<'a> {
            SiteInput {
                role,
                site,
                hubs,
                current_node: None,
                current_tunnel: None,
                nodes: &self.nodes,
                service: None,
                service_cidrs: &self.cidrs,
                other_sites: &self.others,
                secrets: &self.secrets,
                namespace: "kube-dmvpn",
                resolved: &self.resolved,
                metrics_listen: "0.0.0.0:9469".parse().unwrap(),
            }
        }
    }

    #[test]
    fn gateway_is_sticky_while_ready_and_fails_over() {
        let g = gateway(&[("gw", "yes")]);
        let mut nodes = vec![
            node("a", true, &[("gw", "yes")]),
            node("b", true, &[("gw", "yes")]),
            node("c", true, &[]),
        ];
        // First choice: the first by name.
        assert_eq!(choose_gateway(&nodes, &g, None).unwrap().name, "a");
        // Sticky: b stays while Ready, even though a sorts first.
        assert_eq!(choose_gateway(&nodes, &g, Some("b")).unwrap().name, "b");
        // b goes NotReady: failover to a.
        nodes[1].ready = false;
        assert_eq!(choose_gateway(&nodes, &g, Some("b")).unwrap().name, "a");
        // b deleted, a NotReady: nothing matches (c lacks the label).
        nodes.remove(1);
        nodes[0].ready = false;
        let e = choose_gateway(&nodes, &g, Some("b")).unwrap_err();
        assert_eq!(e.reason(), "NoMatchingNode");
        assert!(e.to_string().contains("{gw=yes}"), "{e}");
        // A label removed from the current node moves the tunnel too.
        let nodes = vec![node("a", true, &[]), node("b", true, &[("gw", "yes")])];
        assert_eq!(choose_gateway(&nodes, &g, Some("a")).unwrap().name, "b");
        // An empty selector takes any Ready node.
        assert_eq!(
            choose_gateway(&nodes, &Gateway::default(), None)
                .unwrap()
                .name,
            "a"
        );
    }

    #[test]
    fn node_view_reads_readiness_addresses_and_pod_cidrs() {
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "w1", "labels": {"gw": "yes"}},
            "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [
                    {"type": "Hostname", "address": "w1"},
                    {"type": "InternalIP", "address": "172.18.0.3"},
                    {"type": "ExternalIP", "address": "not-an-ip"},
                    {"type": "ExternalIP", "address": "203.0.113.7"}
                ]
            }
        }))
        .unwrap();
        let v = NodeView::from_node(&n);
        assert!(v.ready);
        assert_eq!(v.internal_ip, Some("172.18.0.3".parse().unwrap()));
        assert_eq!(v.external_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(v.pod_cidrs.len(), 2);
        let mut not_ready = n.clone();
        not_ready
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[0]
            .status = "Unknown".into();
        assert!(!NodeView::from_node(&not_ready).ready);
        let mut deleting = n;
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(!NodeView::from_node(&deleting).ready);
    }

    #[test]
    fn nbma_address_discovery() {
        let mut n = node("n1", true, &[]);
        n.internal_ip = Some("10.0.0.5".parse().unwrap());
        let mut g = Gateway::default();
        // ExternalIP, else InternalIP.
        let a = nbma_addresses(&g, &n, None).unwrap();
        assert_eq!(
            (a.underlay, a.nbma),
            (n.internal_ip.unwrap(), n.internal_ip.unwrap())
        );
        n.external_ip = Some("203.0.113.5".parse().unwrap());
        assert_eq!(
            nbma_addresses(&g, &n, None).unwrap().nbma,
            n.external_ip.unwrap()
        );
        g.nbma_address.from = NbmaSource::InternalIP;
        assert_eq!(
            nbma_addresses(&g, &n, None).unwrap().nbma,
            n.internal_ip.unwrap()
        );
        // Annotation: present, absent, garbage.
        g.nbma_address.from = NbmaSource::Annotation;
        g.nbma_address.annotation = Some("dmvpn.io/nbma".into());
        let e = nbma_addresses(&g, &n, None).unwrap_err();
        assert!(e.to_string().contains("no annotation dmvpn.io/nbma"), "{e}");
        n.annotations.insert("dmvpn.io/nbma".into(), "junk".into());
        assert!(
            nbma_addresses(&g, &n, None)
                .unwrap_err()
                .to_string()
                .contains("`junk`")
        );
        n.annotations
            .insert("dmvpn.io/nbma".into(), " 198.51.100.1 ".into());
        assert_eq!(
            nbma_addresses(&g, &n, None).unwrap().nbma,
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // Service: the LoadBalancer's IP is the NBMA, the node still sends from InternalIP.
        g.nbma_address.from = NbmaSource::Service;
        g.nbma_address.service = Some(dmvpn_crds::ServiceRef {
            namespace: "kube-dmvpn".into(),
            name: "hub".into(),
        });
        let pending: Service =
            serde_json::from_value(serde_json::json!({"status": {"loadBalancer": {}}})).unwrap();
        let e = nbma_addresses(&g, &n, Some(&pending)).unwrap_err();
        assert!(
            e.to_string()
                .contains("kube-dmvpn/hub has no LoadBalancer ingress IP"),
            "{e}"
        );
        assert_eq!(e.reason(), "NbmaAddressUnknown");
        let lb: Service = serde_json::from_value(serde_json::json!({
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}, {"ip": "192.0.2.10"}]}}
        }))
        .unwrap();
        let a = nbma_addresses(&g, &n, Some(&lb)).unwrap();
        assert_eq!(a.nbma, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(a.underlay, n.internal_ip.unwrap());
        // Override wins over from.
        g.nbma_address.override_address = Some("192.0.2.99".parse().unwrap());
        let a = nbma_addresses(&g, &n, None).unwrap();
        assert_eq!(a.nbma, "192.0.2.99".parse::<IpAddr>().unwrap());
        assert_eq!(a.underlay, n.internal_ip.unwrap());
        // No address at all.
        let bare = NodeView {
            internal_ip: None,
            external_ip: None,
            ..node("x", true, &[])
        };
        assert!(nbma_addresses(&Gateway::default(), &bare, None).is_err());
    }

    #[test]
    fn ipam_allocates_lowest_free_and_keeps_current() {
        let pool: AddressPool =
            serde_json::from_value(serde_json::json!({"subnet": "10.1.1.0/29"})).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let mut used = BTreeSet::new();
        assert_eq!(allocate(&pool, &used, None).unwrap(), net("10.1.1.1/29"));
        used.insert(ip("10.1.1.1"));
        used.insert(ip("10.1.1.2"));
        assert_eq!(allocate(&pool, &used, None).unwrap(), net("10.1.1.3/29"));
        // Sticky while free and in range; a conflicting current is replaced.
        assert_eq!(
            allocate(&pool, &used, Some(net("10.1.1.5/29"))).unwrap(),
            net("10.1.1.5/29")
        );
        assert_eq!(
            allocate(&pool, &used, Some(net("10.1.1.2/29"))).unwrap(),
            net("10.1.1.3/29")
        );
        assert_eq!(
            allocate(&pool, &used, Some(net("10.9.9.9/29"))).unwrap(),
            net("10.1.1.3/29")
        );
        // Range limits; broadcast never given.
        let ranged: AddressPool = serde_json::from_value(serde_json::json!({
            "subnet": "10.1.1.0/29", "first": "10.1.1.5", "last": "10.1.1.7"
        }))
        .unwrap();
        assert_eq!(allocate(&ranged, &used, None).unwrap(), net("10.1.1.5/29"));
        used.insert(ip("10.1.1.5"));
        used.insert(ip("10.1.1.6"));
        let e = allocate(&ranged, &used, None).unwrap_err();
        assert_eq!(e.reason(), "PoolExhausted");
        // IPv6.
        let v6: AddressPool =
            serde_json::from_value(serde_json::json!({"subnet": "fd00::/64"})).unwrap();
        assert_eq!(
            allocate(&v6, &BTreeSet::new(), None).unwrap(),
            net("fd00::1/64")
        );
    }

    #[test]
    fn advertised_prefixes_default_to_pod_and_service_cidrs() {
        let f = Fixture::new();
        let hub = hub_spec();
        let tunnel: IpNet = "10.1.1.1/24".parse().unwrap();
        let mut nodes = f.nodes.clone();
        nodes[0].pod_cidrs = vec![
            "10.244.0.0/24".parse().unwrap(),
            "fd00:10::/64".parse().unwrap(),
        ];
        nodes[1].pod_cidrs = vec!["10.244.1.0/24".parse().unwrap()];
        nodes[2].pod_cidrs = vec!["10.1.1.0/25".parse().unwrap()];
        let got = advertised(&hub.site, &nodes, &f.cidrs, tunnel);
        let want: Vec<IpNet> = ["10.96.0.0/16", "10.244.0.0/23"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        // Aggregated, the IPv6 CIDR and the one overlapping the tunnel left out.
        assert_eq!(got, want);
        let mut given = hub.site.clone();
        given.routes.advertise = Some(vec!["192.168.1.0/24".parse().unwrap()]);
        assert_eq!(
            advertised(&given, &nodes, &f.cidrs, tunnel),
            vec!["192.168.1.0/24".parse::<IpNet>().unwrap()]
        );
    }

    #[test]
    fn hub_renders_a_valid_spec() {
        let f = Fixture::new();
        let hub = hub_spec();
        let p = plan(&f.input(Role::Hub, &hub.site, &hub.hubs)).unwrap();
        assert_eq!(p.node, "n1");
        assert_eq!(p.tunnel, "10.1.1.1/24".parse::<IpNet>().unwrap());
        assert_eq!(p.spec.role, Role::Hub);
        assert_eq!(
            p.spec.underlay.address,
            "198.18.1.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(p.spec.nhrp.hold_time, 7200);
        let ipsec = p.spec.ipsec.as_ref().unwrap();
        assert_eq!(ipsec.pre_shared_key_secret_ref.as_ref().unwrap().key, "psk");
        assert_eq!(ipsec.ike, [dmvpn_crds::DEFAULT_IKE_PROPOSAL]);
        assert_eq!(
            p.spec.nhrp.authentication_secret_ref.as_ref().unwrap().name,
            "auth"
        );
        assert_eq!(p.spec.metrics.listen.port(), 9469);
        p.spec.validate().unwrap();
        // Round trip through JSON, as the DmvpnNode travels.
        let back: DmvpnNodeSpec =
            serde_json::from_value(serde_json::to_value(&p.spec).unwrap()).unwrap();
        assert_eq!(back, p.spec);
    }

    #[test]
    fn spoke_renders_hubs_resolved_and_a_pool_address() {
        let mut f = Fixture::new();
        f.others = vec![("DmvpnSpoke/other".into(), "10.1.1.10".parse().unwrap())];
        let spoke = spoke_spec();
        let p = plan(&f.input(Role::Spoke, &spoke.site, &spoke.hubs)).unwrap();
        assert_eq!(p.tunnel, "10.1.1.11/24".parse::<IpNet>().unwrap());
        let servers = &p.spec.nhrp.servers;
        assert_eq!(servers.len(), 2);
        assert_eq!(
            servers[1].nbma_address,
            "198.18.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(servers[1].priority, 5);
        // An unresolved host is a problem, not a guess.
        f.resolved.clear();
        let e = plan(&f.input(Role::Spoke, &spoke.site, &spoke.hubs)).unwrap_err();
        assert_eq!(e, Problem::HubUnresolved("hub2.example.net".into()));
    }

    #[test]
    fn problems_are_named() {
        let hub = hub_spec();
        // Secret absent, then its key absent.
        let mut f = Fixture::new();
        f.secrets.remove("psk");
        let e = plan(&f.input(Role::Hub, &hub.site, &hub.hubs)).unwrap_err();
        assert_eq!(e.reason(), "SecretMissing");
        assert!(
            e.to_string().contains("kube-dmvpn/psk does not exist"),
            "{e}"
        );
        f.secrets
            .insert("psk".into(), BTreeSet::from(["other".to_owned()]));
        let e = plan(&f.input(Role::Hub, &hub.site, &hub.hubs)).unwrap_err();
        assert!(e.to_string().contains("has no key psk"), "{e}");
        // Another site holds the address.
        let mut f = Fixture::new();
        f.others = vec![("DmvpnSpoke/s1".into(), "10.1.1.1".parse().unwrap())];
        let e = plan(&f.input(Role::Hub, &hub.site, &hub.hubs)).unwrap_err();
        assert_eq!(e.reason(), "AddressConflict");
        assert!(e.to_string().contains("DmvpnSpoke/s1"), "{e}");
        // No node.
        let mut f = Fixture::new();
        f.nodes.retain(|n| n.labels.is_empty());
        let e = plan(&f.input(Role::Hub, &hub.site, &hub.hubs)).unwrap_err();
        assert_eq!(e.reason(), "NoMatchingNode");
        // The agent's own checks run on the rendered spec: a spoke without hubs.
        let f = Fixture::new();
        let spoke = spoke_spec();
        let e = plan(&f.input(Role::Spoke, &spoke.site, &[])).unwrap_err();
        assert_eq!(e.reason(), "InvalidSpec");
        assert!(e.to_string().contains("nhrp.servers"), "{e}");
    }
}
