//! What a change of a gateway's `DmvpnNode` spec needs: nothing, a live update of the running
//! router (NHRP settings through the engine's configuration update, RFC 2332 section 5.2.3
//! re-registrations; static routes), or a restart (a new tunnel device, socket or IKE
//! engine). Pure: the gateway loop carries the plan out.

use dmvpn_crds::DmvpnNodeSpec;

/// How to go from a running spec to a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The specs are equal.
    Unchanged,
    /// The running router takes the change: unchanged peers keep their SAs and routes.
    Live {
        /// The NHRP section or the advertised prefixes changed: the engine's configuration
        /// is updated (re-registrations, purges of withdrawn prefixes).
        nhrp: bool,
        /// The static routes changed: the route set is reconciled.
        static_routes: bool,
    },
    /// The router must restart; the fields that need it, as spec paths.
    Restart(Vec<&'static str>),
}

/// The plan that takes a router running `old` to `new`.
///
/// A restart is needed for what the router opened or negotiated with: the role, the tunnel
/// (device name, address and subnet, GRE key, MTU), the underlay address (the socket and
/// every peer's NBMA mapping), IPsec (the IKE engine's credentials and proposals), the
/// admin socket and the metrics listener. Everything in `nhrp` (servers, holdtime, password,
/// phase 3 switches) and `routes` applies live; the NHRP network id applies from the next
/// packet.
pub fn plan(old: &DmvpnNodeSpec, new: &DmvpnNodeSpec) -> Plan {
    if old == new {
        return Plan::Unchanged;
    }
    let restart: Vec<&'static str> = [
        ("role", old.role != new.role),
        ("tunnel", old.tunnel != new.tunnel),
        ("underlay", old.underlay != new.underlay),
        ("ipsec", old.ipsec != new.ipsec),
        ("admin", old.admin != new.admin),
        ("metrics", old.metrics != new.metrics),
    ]
    .into_iter()
    .filter_map(|(field, changed)| changed.then_some(field))
    .collect();
    if !restart.is_empty() {
        return Plan::Restart(restart);
    }
    Plan::Live {
        nhrp: old.nhrp != new.nhrp || old.routes.advertise != new.routes.advertise,
        static_routes: old.routes.static_routes != new.routes.static_routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPOKE: &str = "
role: spoke
tunnel: {interface: dmvpn0, address: 10.1.1.2/24, key: 100}
underlay: {address: 198.18.0.2}
nhrp:
  networkId: 1
  holdTime: 300
  servers: [{tunnelAddress: 10.1.1.1, nbmaAddress: 198.18.0.1}]
routes:
  advertise: [192.168.2.0/24]
  static: [{prefix: 192.168.0.0/16, via: 10.1.1.1}]
";

    fn spec(yaml: &str) -> DmvpnNodeSpec {
        DmvpnNodeSpec::from_yaml_str(yaml).unwrap()
    }

    #[test]
    fn an_equal_spec_is_unchanged() {
        assert_eq!(plan(&spec(SPOKE), &spec(SPOKE)), Plan::Unchanged);
    }

    #[test]
    fn nhrp_settings_and_advertised_prefixes_apply_live() {
        let holdtime = SPOKE.replace("holdTime: 300", "holdTime: 600");
        assert_eq!(
            plan(&spec(SPOKE), &spec(&holdtime)),
            Plan::Live {
                nhrp: true,
                static_routes: false
            }
        );
        let nhs = SPOKE.replace(
            "servers: [{tunnelAddress: 10.1.1.1, nbmaAddress: 198.18.0.1}]",
            "servers: [{tunnelAddress: 10.1.1.1, nbmaAddress: 198.18.0.1}, {tunnelAddress: 10.1.1.3, nbmaAddress: 198.18.0.3}]",
        );
        assert_eq!(
            plan(&spec(SPOKE), &spec(&nhs)),
            Plan::Live {
                nhrp: true,
                static_routes: false
            }
        );
        let advertise = SPOKE.replace("[192.168.2.0/24]", "[192.168.2.0/24, 192.168.7.0/24]");
        assert_eq!(
            plan(&spec(SPOKE), &spec(&advertise)),
            Plan::Live {
                nhrp: true,
                static_routes: false
            }
        );
    }

    #[test]
    fn static_routes_apply_live() {
        let statics = SPOKE.replace("192.168.0.0/16", "172.16.0.0/12");
        assert_eq!(
            plan(&spec(SPOKE), &spec(&statics)),
            Plan::Live {
                nhrp: false,
                static_routes: true
            }
        );
    }

    #[test]
    fn the_tunnel_underlay_role_and_ipsec_need_a_restart() {
        let tunnel = SPOKE.replace("10.1.1.2/24", "10.1.1.9/24");
        assert_eq!(
            plan(&spec(SPOKE), &spec(&tunnel)),
            Plan::Restart(vec!["tunnel"])
        );
        let both = tunnel.replace("198.18.0.2", "198.18.0.9");
        assert_eq!(
            plan(&spec(SPOKE), &spec(&both)),
            Plan::Restart(vec!["tunnel", "underlay"])
        );
        let mtu = SPOKE.replace("key: 100}", "key: 100, mtu: 1400}");
        assert_eq!(
            plan(&spec(SPOKE), &spec(&mtu)),
            Plan::Restart(vec!["tunnel"])
        );
        let ipsec = format!("{SPOKE}ipsec: {{preSharedKeyFile: k.psk}}\n");
        assert_eq!(
            plan(&spec(SPOKE), &spec(&ipsec)),
            Plan::Restart(vec!["ipsec"])
        );
        // A restart wins over live changes made at the same time.
        let mixed = both.replace("holdTime: 300", "holdTime: 600");
        assert_eq!(
            plan(&spec(SPOKE), &spec(&mixed)),
            Plan::Restart(vec!["tunnel", "underlay"])
        );
    }
}
