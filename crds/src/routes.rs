//! The `routes` section: what IOS writes as `ip route ... <tunnel next hop>` and what a routing
//! protocol would advertise, here the prefixes registered with the NHS.

use core::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Context;
use crate::de;
use crate::error::Issue;

/// The overlay routes of this router.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoutesSpec {
    /// This site's prefixes: registered with every NHS (RFC 2332 section 5.2.3, one Client
    /// Information Entry each, with its prefix length) and answered for in resolution
    /// replies, so that peers route them through this router. Stands in for the routing
    /// protocol of an IOS DMVPN (`network 192.168.1.0` under EIGRP or OSPF).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::texts::<_, de::Prefix>"
    )]
    #[schemars(schema_with = "crate::schema::prefixes")]
    pub advertise: Vec<IpNet>,
    /// Static routes into the tunnel (IOS `ip route 192.168.2.0 255.255.255.0 10.1.1.2`).
    #[serde(default, rename = "static", skip_serializing_if = "Vec::is_empty")]
    pub static_routes: Vec<StaticRoute>,
}

/// One static route through the tunnel (IOS `ip route <prefix> <mask> <tunnel next hop>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticRoute {
    /// The destination prefix.
    #[serde(deserialize_with = "de::text::<_, de::Prefix>")]
    #[schemars(schema_with = "crate::schema::prefix")]
    pub prefix: IpNet,
    /// The next hop's tunnel address, inside the tunnel subnet; NHRP finds its NBMA address.
    #[serde(deserialize_with = "de::text::<_, de::Address>")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub via: IpAddr,
}

impl RoutesSpec {
    pub(crate) fn check(&self, cx: &Context, out: &mut Vec<Issue>) {
        let subnet = cx.tunnel.trunc();
        for (i, p) in self.advertise.iter().enumerate() {
            let path = format!("routes.advertise[{i}]");
            if check_prefix(&path, p, cx, out) && (subnet.contains(p) || p.contains(&subnet)) {
                out.push(Issue::new(
                    path,
                    format!(
                        "{p} overlaps the tunnel subnet {subnet}, which every router already reaches: advertise only this site's prefixes, such as 192.168.1.0/24"
                    ),
                ));
            }
        }
        for (i, r) in self.static_routes.iter().enumerate() {
            let path = format!("routes.static[{i}]");
            check_prefix(&format!("{path}.prefix"), &r.prefix, cx, out);
            if self.static_routes[..i].iter().any(|o| o.prefix == r.prefix) {
                out.push(Issue::new(
                    format!("{path}.prefix"),
                    format!("{} has a route already: keep one", r.prefix),
                ));
            }
            let via = r.via;
            let example = cx.peer_example();
            if via == cx.tunnel.addr() {
                out.push(Issue::new(
                    format!("{path}.via"),
                    format!("{via} is this router's own tunnel address: route via a peer's, such as {example}"),
                ));
            } else if !subnet.contains(&via) {
                out.push(Issue::new(
                    format!("{path}.via"),
                    format!(
                        "{via} is outside the tunnel subnet {subnet}: the next hop is a peer's tunnel address, such as {example}"
                    ),
                ));
            }
        }
    }
}

/// Checks that `p` is a network prefix of the tunnel's family; true when it is.
fn check_prefix(path: &str, p: &IpNet, cx: &Context, out: &mut Vec<Issue>) -> bool {
    if p.addr().is_ipv4() != cx.tunnel.addr().is_ipv4() {
        out.push(Issue::new(
            path,
            format!(
                "{p} is not of the tunnel's address family ({}): the tunnel carries only that family, use a prefix of it",
                cx.tunnel
            ),
        ));
        false
    } else if p.addr() != p.network() {
        out.push(Issue::new(
            path,
            format!("{p} has host bits set: write {}", p.trunc()),
        ));
        false
    } else {
        true
    }
}
