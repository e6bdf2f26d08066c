//! The forwarder's own settings: plain values, filled by the agent from its configuration
//! (the DmvpnNode spec); the NHRP engine carries the tunnel address and role.

use core::net::IpAddr;

use dmvpn_nhrp::Prefix;

use crate::batch::DEFAULT_PACKET_CAPACITY;
use crate::overhead::{TCP_IPV4_HEADERS, TCP_IPV6_HEADERS};

/// The default bound of the per-peer queue of packets waiting for an SA.
pub const DEFAULT_QUEUE_LIMIT: usize = 32;
/// The default most ICMP errors sent per second (RFC 1812 section 4.3.2.8 asks for a limit).
pub const DEFAULT_ICMP_PER_SECOND: u32 = 100;
/// Cisco's default `ip mtu` of a DMVPN tunnel.
pub const DEFAULT_TUNNEL_MTU: u16 = 1400;

/// A static route: `ip route <prefix> <via>` with a next hop on the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    /// The destinations.
    pub prefix: Prefix,
    /// The tunnel address of the next hop, resolved through the NHRP cache.
    pub via: IpAddr,
}

/// The forwarder's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// The tunnel MTU (`ip mtu`): the largest inner packet sent.
    pub mtu: u16,
    /// The GRE key (`tunnel key`, RFC 2890 section 2.1); packets with another key are
    /// dropped.
    pub gre_key: Option<u32>,
    /// Static routes over the tunnel.
    pub static_routes: Vec<StaticRoute>,
    /// `ip tcp adjust-mss` for IPv4; `None` derives it from the MTU (MTU - 40). IPv6 SYNs
    /// are clamped 20 bytes lower. Clamping is off when `clamp_mss` is false.
    pub mss: Option<u16>,
    /// Whether TCP MSS clamping is on.
    pub clamp_mss: bool,
    /// Packets held per peer while its SA is negotiated; more are dropped and counted.
    pub queue_limit: usize,
    /// ICMP errors sent per second at most.
    pub icmp_per_second: u32,
    /// The largest packet a buffer holds.
    pub packet_capacity: usize,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            mtu: DEFAULT_TUNNEL_MTU,
            gre_key: None,
            static_routes: Vec::new(),
            mss: None,
            clamp_mss: true,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            icmp_per_second: DEFAULT_ICMP_PER_SECOND,
            packet_capacity: DEFAULT_PACKET_CAPACITY,
        }
    }
}

/// Why a [`ForwarderConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The MTU is below IPv4's minimum of 68 (RFC 791) or above the buffer capacity.
    #[error("tunnel MTU {0} must be at least 68 and at most the packet capacity")]
    Mtu(u16),
    /// A static route's next hop is not of its prefix's family.
    #[error("static route {0} has a next hop of another address family")]
    RouteFamily(Prefix),
}

impl ForwarderConfig {
    /// The MSS IPv4 SYNs are clamped to.
    pub fn mss_v4(&self) -> u16 {
        self.mss
            .unwrap_or(self.mtu.saturating_sub(TCP_IPV4_HEADERS))
    }

    /// The MSS IPv6 SYNs are clamped to.
    pub fn mss_v6(&self) -> u16 {
        self.mss_v4()
            .saturating_sub(TCP_IPV6_HEADERS - TCP_IPV4_HEADERS)
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mtu < 68 || usize::from(self.mtu) > self.packet_capacity {
            return Err(ConfigError::Mtu(self.mtu));
        }
        if let Some(r) = self
            .static_routes
            .iter()
            .find(|r| r.prefix.addr().is_ipv4() != r.via.is_ipv4())
        {
            return Err(ConfigError::RouteFamily(r.prefix));
        }
        Ok(())
    }
}
