//! The agent's configuration ([`DmvpnNodeSpec`]) turned into the settings of its parts: the
//! NHRP engine (RFC 2332, Cisco DMVPN phase 3), the forwarder and the tunnel device.

use core::net::IpAddr;

use dmvpn_crds::{DmvpnNodeSpec, Role};
use dmvpn_dataplane::overhead::{DEFAULT_UNDERLAY_MTU, tunnel_mtu};
use dmvpn_dataplane::{ForwarderConfig, StaticRoute};
use dmvpn_nhrp::{Config, NhsConfig, Password, Prefix};
use ipnet::IpNet;

/// Why a spec cannot be turned into settings: limits of this build or of the engines that
/// the crds validation does not know.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The NHRP engine refused its configuration.
    #[error("nhrp: {0}")]
    Nhrp(#[from] dmvpn_nhrp::ConfigError),
    /// The forwarder refused its configuration.
    #[error("tunnel: {0}")]
    Forwarder(#[from] dmvpn_dataplane::ConfigError),
    /// The IKE engine refused its configuration (a proposal, say).
    #[error("ipsec: {0}")]
    Ipsec(#[from] dmvpn_ike::ConfigError),
    /// A prefix length does not fit its address family (cannot happen after validation).
    #[error("{field}: prefix {prefix} is invalid")]
    Prefix {
        /// The field path.
        field: &'static str,
        /// The prefix.
        prefix: IpNet,
    },
}

/// Everything the driver needs to know besides the OS handles.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The TUN device's name.
    pub interface: String,
    /// Our tunnel address.
    pub tunnel_address: IpAddr,
    /// The tunnel subnet's prefix length.
    pub tunnel_prefix_len: u8,
    /// The tunnel MTU: `tunnel.mtu`, else the underlay MTU less the largest overhead.
    pub mtu: u16,
    /// Our underlay (NBMA) address.
    pub underlay: IpAddr,
    /// Whether GRE goes unprotected.
    pub insecure: bool,
    /// The NHRP engine's configuration (holds the NHRP password, redacted in `Debug`).
    pub nhrp: Config,
    /// The forwarder's configuration.
    pub forwarder: ForwarderConfig,
}

fn prefix(field: &'static str, net: IpNet) -> Result<Prefix, SettingsError> {
    Prefix::new(net.network(), net.prefix_len())
        .map_err(|_| SettingsError::Prefix { field, prefix: net })
}

impl Settings {
    /// The settings of a validated spec.
    ///
    /// # Errors
    /// [`SettingsError`] when an engine refuses its part.
    pub fn from_spec(spec: &DmvpnNodeSpec) -> Result<Self, SettingsError> {
        let role = match spec.role {
            Role::Hub => dmvpn_nhrp::Role::Hub,
            Role::Spoke => dmvpn_nhrp::Role::Spoke,
        };
        let tunnel = spec.tunnel.address;
        let underlay = spec.underlay.address;
        let mut nhrp = Config::new(role, tunnel.addr(), tunnel.prefix_len(), underlay);
        nhrp.network_id = spec.nhrp.network_id;
        nhrp.password = spec
            .nhrp
            .authentication
            .as_ref()
            .map(|a| Password::new(a.expose().as_bytes()))
            .transpose()?;
        nhrp.holdtime = spec.nhrp.hold_time;
        nhrp.registration_timeout = spec.nhrp.registration_timeout;
        nhrp.multicast_dynamic = spec.nhrp.map_multicast_dynamic_enabled(spec.role);
        nhrp.redirect = spec.nhrp.redirect_enabled(spec.role);
        nhrp.shortcut = spec.nhrp.shortcut_enabled(spec.role);
        nhrp.nhs = spec
            .nhrp
            .servers
            .iter()
            .map(|s| NhsConfig {
                tunnel: s.tunnel_address,
                nbma: s.nbma_address,
                priority: s.priority,
            })
            .collect();
        nhrp.advertised_prefixes = spec
            .routes
            .advertise
            .iter()
            .map(|n| prefix("routes.advertise", *n))
            .collect::<Result<_, _>>()?;
        nhrp.validate()?;

        let esp = spec.ipsec.is_some();
        let mtu = spec.tunnel.mtu.unwrap_or_else(|| {
            tunnel_mtu(
                DEFAULT_UNDERLAY_MTU,
                esp,
                spec.tunnel.key.is_some(),
                underlay.is_ipv6(),
            )
        });
        nhrp.mtu = mtu;
        let forwarder = ForwarderConfig {
            mtu,
            gre_key: spec.tunnel.key,
            static_routes: spec
                .routes
                .static_routes
                .iter()
                .map(|r| {
                    Ok(StaticRoute {
                        prefix: prefix("routes.static", r.prefix)?,
                        via: r.via,
                    })
                })
                .collect::<Result<_, SettingsError>>()?,
            ..ForwarderConfig::default()
        };
        forwarder.validate()?;
        Ok(Settings {
            interface: spec.tunnel.interface.clone(),
            tunnel_address: tunnel.addr(),
            tunnel_prefix_len: tunnel.prefix_len(),
            mtu,
            underlay,
            insecure: spec.is_insecure(),
            nhrp,
            forwarder,
        })
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
  authentication: '@lpha'
  holdTime: 300
  servers: [{tunnelAddress: 10.1.1.1, nbmaAddress: 198.18.0.1}]
routes:
  advertise: [192.168.2.0/24]
  static: [{prefix: 192.168.0.0/16, via: 10.1.1.1}]
";

    #[test]
    fn a_spoke_spec_becomes_engine_and_forwarder_settings() {
        let spec = DmvpnNodeSpec::from_yaml_str(SPOKE).unwrap();
        let s = Settings::from_spec(&spec).unwrap();
        assert!(s.insecure);
        // 1500 - (20 IPv4 + 8 UDP + 8 GRE with key): no ESP.
        assert_eq!(s.mtu, 1464);
        assert_eq!(s.nhrp.role, dmvpn_nhrp::Role::Spoke);
        assert!(s.nhrp.shortcut && !s.nhrp.redirect);
        assert_eq!(s.nhrp.holdtime, 300);
        // No registrationTimeout: a third of the holdtime; a spoke replicates to its NHS only.
        assert_eq!(s.nhrp.registration_timeout, None);
        assert_eq!(
            s.nhrp.registration_interval(),
            std::time::Duration::from_secs(100)
        );
        assert!(!s.nhrp.multicast_dynamic);
        assert_eq!(s.nhrp.password.as_ref().unwrap().expose(), b"@lpha");
        assert_eq!(s.nhrp.nhs.len(), 1);
        assert_eq!(s.nhrp.nhs[0].nbma, "198.18.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(s.nhrp.advertised_prefixes[0].to_string(), "192.168.2.0/24");
        assert_eq!(s.forwarder.gre_key, Some(100));
        assert_eq!(
            s.forwarder.static_routes[0].prefix.to_string(),
            "192.168.0.0/16"
        );
        // The password stays out of Debug output.
        assert!(!format!("{s:?}").contains("@lpha"));
    }

    #[test]
    fn an_explicit_mtu_wins_and_esp_lowers_the_derived_one() {
        let with_mtu = SPOKE.replace("key: 100}", "key: 100, mtu: 1400}");
        let s = Settings::from_spec(&DmvpnNodeSpec::from_yaml_str(&with_mtu).unwrap()).unwrap();
        assert_eq!(s.mtu, 1400);
        let esp = format!("{SPOKE}ipsec: {{preSharedKeyFile: k.psk}}\n");
        let s = Settings::from_spec(&DmvpnNodeSpec::from_yaml_str(&esp).unwrap()).unwrap();
        assert_eq!(s.mtu, 1427);
        assert!(!s.insecure);
    }

    #[test]
    fn registration_timeout_and_map_multicast_dynamic_reach_the_engine() {
        let spoke = SPOKE.replace(
            "holdTime: 300",
            "holdTime: 300\n  registrationTimeout: 20\n  mapMulticastDynamic: true",
        );
        let s = Settings::from_spec(&DmvpnNodeSpec::from_yaml_str(&spoke).unwrap()).unwrap();
        assert_eq!(s.nhrp.registration_timeout, Some(20));
        assert_eq!(
            s.nhrp.registration_interval(),
            std::time::Duration::from_secs(20)
        );
        assert!(s.nhrp.multicast_dynamic);
        let hub = "
role: hub
tunnel: {interface: dmvpn0, address: 10.1.1.1/24}
underlay: {address: 198.18.0.1}
nhrp: {networkId: 1}
";
        let s = Settings::from_spec(&DmvpnNodeSpec::from_yaml_str(hub).unwrap()).unwrap();
        assert!(s.nhrp.multicast_dynamic, "on by default at a hub");
        let off = hub.replace("networkId: 1}", "networkId: 1, mapMulticastDynamic: false}");
        let s = Settings::from_spec(&DmvpnNodeSpec::from_yaml_str(&off).unwrap()).unwrap();
        assert!(!s.nhrp.multicast_dynamic);
    }
}
