//! The route agent's plan: on a node without a `DmvpnNode`, the overlay's prefixes (the
//! active gateway's `status.remotePrefixes` and the tunnel subnet) are routed via the
//! gateway node's address (annotation `dmvpn.io/gateway-address`), so that pods on every node
//! reach the remote sites whatever the CNI. Pure: the route agent applies the plan with the
//! dataplane's route reconciler.

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};

use dmvpn_crds::DmvpnNode;
use dmvpn_dataplane::os::OsRoute;
use dmvpn_nhrp::Prefix;
use kube::ResourceExt;

/// The annotation holding a gateway node's InternalIP, which route agents route via.
pub const GATEWAY_ADDRESS_ANNOTATION: &str = "dmvpn.io/gateway-address";
/// The label naming a DmvpnNode's site (its DmvpnHub or DmvpnSpoke).
pub const SITE_LABEL: &str = "dmvpn.io/site";
/// The route protocol number that marks a route agent's routes (`ip route ... proto 213`),
/// apart from a gateway's routes into its tunnel device (212): the reconciler of each mode
/// leaves the other's alone.
pub const ROUTE_AGENT_PROTOCOL: u8 = 213;

/// An active gateway: a DmvpnNode whose `Ready` condition is true and whose gateway address
/// is set and parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGateway {
    /// The DmvpnNode's name (the gateway's Kubernetes Node).
    pub node: String,
    /// Its gateway address.
    pub address: IpAddr,
    /// The prefixes to route via it.
    pub prefixes: BTreeSet<Prefix>,
}

fn ready(node: &DmvpnNode) -> bool {
    node.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn prefix(net: ipnet::IpNet) -> Option<Prefix> {
    Prefix::new(net.network(), net.prefix_len()).ok()
}

/// The active gateway of each site among `nodes`: the Ready DmvpnNode with a gateway
/// address; when a failover leaves two Ready (the old one not yet deleted), the newest
/// (by creation time, then name).
pub fn active_gateways(nodes: &[DmvpnNode]) -> Vec<ActiveGateway> {
    let mut sites: BTreeMap<String, &DmvpnNode> = BTreeMap::new();
    for node in nodes.iter().filter(|n| ready(n)) {
        let Some(_) = gateway_address(node) else {
            continue;
        };
        let site = node
            .labels()
            .get(SITE_LABEL)
            .cloned()
            .unwrap_or_else(|| node.name_any());
        let key = |n: &DmvpnNode| (n.creation_timestamp(), n.name_any());
        match sites.get(&site) {
            Some(other) if key(other) >= key(node) => {}
            _ => {
                sites.insert(site, node);
            }
        }
    }
    sites
        .into_values()
        .filter_map(|node| {
            let address = gateway_address(node)?;
            let status = node.status.as_ref()?;
            let mut prefixes: BTreeSet<Prefix> = status
                .remote_prefixes
                .iter()
                .filter_map(|n| prefix(*n))
                .collect();
            prefixes.extend(prefix(node.spec.tunnel.address.trunc()));
            Some(ActiveGateway {
                node: node.name_any(),
                address,
                prefixes,
            })
        })
        .collect()
}

fn gateway_address(node: &DmvpnNode) -> Option<IpAddr> {
    node.annotations()
        .get(GATEWAY_ADDRESS_ANNOTATION)?
        .trim()
        .parse()
        .ok()
}

/// The routes a route agent installs: every active gateway's prefixes via its address, of
/// the gateway's address family; a prefix two sites claim goes via the first site's.
pub fn plan_routes(nodes: &[DmvpnNode]) -> BTreeSet<OsRoute> {
    let mut routes: BTreeMap<Prefix, IpAddr> = BTreeMap::new();
    for gw in active_gateways(nodes) {
        for p in gw.prefixes {
            if p.addr().is_ipv4() == gw.address.is_ipv4() {
                routes.entry(p).or_insert(gw.address);
            }
        }
    }
    routes
        .into_iter()
        .map(|(prefix, via)| OsRoute {
            prefix,
            ifindex: 0,
            via: Some(via),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dmvpn_crds::{DmvpnNodeSpec, DmvpnNodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    pub(crate) const HUB: &str = "
role: hub
tunnel: {interface: dmvpn0, address: 10.1.1.1/24}
underlay: {address: 198.18.0.1}
nhrp: {networkId: 1}
routes: {advertise: [192.168.1.0/24]}
";

    pub(crate) fn node(
        name: &str,
        site: &str,
        gateway: Option<&str>,
        ready: bool,
        created: i64,
        remote: &[&str],
    ) -> DmvpnNode {
        let mut n = DmvpnNode::new(name, DmvpnNodeSpec::from_yaml_str(HUB).unwrap());
        n.metadata.labels = Some([(SITE_LABEL.to_owned(), site.to_owned())].into());
        if let Some(g) = gateway {
            n.metadata.annotations =
                Some([(GATEWAY_ADDRESS_ANNOTATION.to_owned(), g.to_owned())].into());
        }
        n.metadata.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
        ));
        n.status = Some(DmvpnNodeStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                reason: "Running".into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            }],
            remote_prefixes: remote.iter().map(|p| p.parse().unwrap()).collect(),
            ..DmvpnNodeStatus::default()
        });
        n
    }

    fn route(p: &str, via: &str) -> OsRoute {
        let net: ipnet::IpNet = p.parse().unwrap();
        OsRoute {
            prefix: Prefix::new(net.network(), net.prefix_len()).unwrap(),
            ifindex: 0,
            via: Some(via.parse().unwrap()),
        }
    }

    #[test]
    fn the_ready_gateways_remote_prefixes_and_tunnel_subnet_go_via_its_address() {
        let nodes = [node(
            "node-a",
            "hub",
            Some("172.18.0.2"),
            true,
            1,
            &["192.168.2.0/24", "192.168.3.0/24"],
        )];
        assert_eq!(
            plan_routes(&nodes),
            BTreeSet::from([
                route("10.1.1.0/24", "172.18.0.2"),
                route("192.168.2.0/24", "172.18.0.2"),
                route("192.168.3.0/24", "172.18.0.2"),
            ])
        );
    }

    #[test]
    fn not_ready_or_unannotated_gateways_get_no_routes() {
        let nodes = [
            node(
                "node-a",
                "hub",
                Some("172.18.0.2"),
                false,
                1,
                &["192.168.2.0/24"],
            ),
            node("node-b", "hub2", None, true, 1, &["192.168.2.0/24"]),
            node(
                "node-c",
                "hub3",
                Some("not-an-address"),
                true,
                1,
                &["192.168.2.0/24"],
            ),
        ];
        assert!(plan_routes(&nodes).is_empty());
    }

    #[test]
    fn a_failover_moves_the_routes_to_the_newest_ready_gateway() {
        let old = node(
            "node-a",
            "hub",
            Some("172.18.0.2"),
            true,
            1,
            &["192.168.2.0/24"],
        );
        let new = node(
            "node-b",
            "hub",
            Some("172.18.0.3"),
            true,
            2,
            &["192.168.2.0/24"],
        );
        let both = [old.clone(), new.clone()];
        assert_eq!(active_gateways(&both)[0].node, "node-b");
        assert!(
            plan_routes(&both)
                .iter()
                .all(|r| r.via == Some("172.18.0.3".parse().unwrap()))
        );
        // Until the new one is Ready, the old one carries the traffic.
        let new_starting = node("node-b", "hub", Some("172.18.0.3"), false, 2, &[]);
        assert!(
            plan_routes(&[old, new_starting])
                .iter()
                .all(|r| r.via == Some("172.18.0.2".parse().unwrap()))
        );
    }

    #[test]
    fn routes_of_another_family_than_the_gateway_are_left_out() {
        let nodes = [node(
            "node-a",
            "hub",
            Some("fd00::2"),
            true,
            1,
            &["192.168.2.0/24", "fd10::/64"],
        )];
        assert_eq!(
            plan_routes(&nodes),
            BTreeSet::from([route("fd10::/64", "fd00::2")])
        );
    }
}
