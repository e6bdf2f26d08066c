//! The configuration of one NHRP interface: what Cisco writes as `ip nhrp ...` under a
//! `interface Tunnel` and FRR nhrpd as `ip nhrp ...` under the GRE interface.

use core::fmt;
use core::net::IpAddr;
use core::time::Duration;

use crate::prefix::{Prefix, host_len};

/// The default holding time of registrations and replies: Cisco's and FRR nhrpd's
/// `ip nhrp holdtime` default, 7200 s (RFC 2332 leaves it to the implementation).
pub const DEFAULT_HOLDTIME: u16 = 7200;
/// The longest Cisco cleartext password (`ip nhrp authentication`, 8 characters).
pub const MAX_PASSWORD_LEN: usize = 8;
/// The default bound on dynamic cache entries (registered, shortcut, incomplete).
pub const DEFAULT_CACHE_LIMIT: usize = 100_000;
/// The default bound on the entries one peer may register (its tunnel address and site
/// prefixes), so that one peer cannot fill the cache.
pub const DEFAULT_MAX_REGISTRATIONS_PER_PEER: usize = 64;

/// Whether this router is a Next Hop Server (hub) or only a client (spoke).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// NHS: accepts registrations (RFC 2332 section 5.2.3) and keeps the multicast
    /// replication set (`ip nhrp map multicast dynamic`).
    Hub,
    /// NHC: registers with its NHSs and refuses registrations.
    Spoke,
}

/// The Cisco cleartext authentication password (`ip nhrp authentication`), at most
/// [`MAX_PASSWORD_LEN`] bytes. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    /// Checks and wraps a password.
    ///
    /// # Errors
    /// [`ConfigError::PasswordLength`] when it is empty or longer than 8 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.is_empty() || bytes.len() > MAX_PASSWORD_LEN {
            return Err(ConfigError::PasswordLength(bytes.len()));
        }
        Ok(Password(bytes.to_vec()))
    }

    /// The secret bytes, for the code that emits or compares the extension.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// One Next Hop Server of a client: `ip nhrp nhs <tunnel> nbma <nbma> [priority <p>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NhsConfig {
    /// The NHS's tunnel (protocol) address.
    pub tunnel: IpAddr,
    /// The NHS's NBMA (underlay) address.
    pub nbma: IpAddr,
    /// Cisco's NHS priority: 0 is the most preferred.
    pub priority: u8,
}

/// A static route of an NHS for resolution requests it cannot answer: requests for
/// addresses in `prefix` are forwarded to the NHS at tunnel address `next_hop` (RFC 2332
/// section 5.2.1, "along the routed path"; on Cisco the routing table, e.g. a core hub's
/// route to a regional hub's site prefixes). The next hop must be registered with this NHS
/// or be one of its NHSs, for its NBMA address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    /// The destinations.
    pub prefix: Prefix,
    /// The tunnel address of the NHS to forward to.
    pub next_hop: IpAddr,
}

/// The configuration of one NHRP interface.
#[derive(Debug, Clone)]
pub struct Config {
    /// Hub or spoke.
    pub role: Role,
    /// The tunnel (protocol) address of this router.
    pub tunnel_address: IpAddr,
    /// The prefix length of the tunnel subnet (`ip address 10.1.1.1 255.255.255.0` = 24).
    pub tunnel_prefix_len: u8,
    /// The NBMA (underlay) address this router sends from, as configured (pre-NAT).
    pub nbma_address: IpAddr,
    /// `ip nhrp network-id`: identifies the NHRP domain locally (it is not on the wire).
    pub network_id: u32,
    /// `ip nhrp authentication`.
    pub password: Option<Password>,
    /// `ip nhrp holdtime`, in seconds, sent in registrations and replies.
    pub holdtime: u16,
    /// `ip nhrp registration timeout`: seconds between the registrations of a client with
    /// each NHS; `None`, a third of the holdtime (the IOS default, RFC 2332 section 5.2.3
    /// leaves the refresh to the client).
    pub registration_timeout: Option<u16>,
    /// The NHSs to register with (spokes; a hub may have some for a hierarchy).
    pub nhs: Vec<NhsConfig>,
    /// Site prefixes registered with every NHS and answered for in resolutions.
    pub advertised_prefixes: Vec<Prefix>,
    /// Static routes of resolution requests (hub); the NHSs are the default route.
    pub routes: Vec<Route>,
    /// The unique flag of registrations (Cisco default; `ip nhrp registration no-unique`
    /// clears it).
    pub unique: bool,
    /// `ip nhrp redirect` (hub, DMVPN phase 3).
    pub redirect: bool,
    /// `ip nhrp map multicast dynamic`: multicast and broadcast are replicated to the peers
    /// registered here as well as to the NHSs ([`crate::Engine::multicast_peers`]). On in
    /// [`Config::new`], where a hub wants it; IOS needs the command.
    pub multicast_dynamic: bool,
    /// `ip nhrp shortcut` (spoke, DMVPN phase 3).
    pub shortcut: bool,
    /// The most dynamic cache entries kept; more are refused and counted.
    pub cache_limit: usize,
    /// The most entries one peer may register at this NHS; more are refused with CIE code 5
    /// and counted.
    pub max_registrations_per_peer: usize,
    /// The MTU advertised in CIEs; 0 = unspecified (nhrpd sends 0 for 1500 and above).
    pub mtu: u16,
}

/// Why a [`Config`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The password is empty or longer than 8 bytes.
    #[error("the NHRP password must be 1 to 8 bytes, not {0}")]
    PasswordLength(usize),
    /// The tunnel prefix length exceeds the address length.
    #[error("tunnel prefix length {0} is longer than the tunnel address")]
    TunnelPrefixLen(u8),
    /// The holdtime is zero.
    #[error("the holdtime must be at least 1 second")]
    ZeroHoldtime,
    /// The registration timeout is zero or longer than the holdtime (registrations would
    /// expire between two refreshes).
    #[error("the registration timeout must be 1 second to the holdtime, not {0}")]
    RegistrationTimeout(u16),
    /// A spoke without an NHS.
    #[error("a spoke needs at least one NHS")]
    NoNhs,
    /// An NHS (or the next hop of a route) whose tunnel address is outside the tunnel
    /// subnet or of another family.
    #[error("NHS {0} is not in the tunnel subnet")]
    NhsOutsideSubnet(IpAddr),
    /// An advertised prefix or route of another family than the tunnel address.
    #[error("prefix {0} is not of the tunnel address family")]
    PrefixFamily(Prefix),
    /// An advertised prefix that overlaps the tunnel subnet.
    #[error("advertised prefix {0} overlaps the tunnel subnet")]
    PrefixInTunnelSubnet(Prefix),
    /// The cache limit or the per-peer registration limit is zero.
    #[error("the cache limit and the per-peer registration limit must be at least 1")]
    ZeroCacheLimit,
    /// A configuration update changes a setting that only a new engine can take (the field
    /// named).
    #[error("changing {0} needs a restart of the NHRP engine")]
    RestartRequired(&'static str),
}

impl Config {
    /// A configuration with the defaults of Cisco IOS: holdtime 7200 s, unique
    /// registrations, no password, no NHS, redirect and shortcut off.
    pub fn new(role: Role, tunnel_address: IpAddr, tunnel_prefix_len: u8, nbma: IpAddr) -> Self {
        Config {
            role,
            tunnel_address,
            tunnel_prefix_len,
            nbma_address: nbma,
            network_id: 1,
            password: None,
            holdtime: DEFAULT_HOLDTIME,
            registration_timeout: None,
            nhs: Vec::new(),
            advertised_prefixes: Vec::new(),
            routes: Vec::new(),
            unique: true,
            redirect: false,
            multicast_dynamic: true,
            shortcut: false,
            cache_limit: DEFAULT_CACHE_LIMIT,
            max_registrations_per_peer: DEFAULT_MAX_REGISTRATIONS_PER_PEER,
            mtu: 0,
        }
    }

    /// The tunnel subnet.
    pub fn tunnel_subnet(&self) -> Prefix {
        Prefix::new(self.tunnel_address, self.tunnel_prefix_len)
            .unwrap_or_else(|_| Prefix::host(self.tunnel_address))
    }

    /// The holdtime as a duration.
    pub fn holdtime(&self) -> Duration {
        Duration::from_secs(u64::from(self.holdtime))
    }

    /// The time between two registrations with an NHS: `registration_timeout`, else a
    /// third of the holdtime.
    pub fn registration_interval(&self) -> Duration {
        match self.registration_timeout {
            Some(t) => Duration::from_secs(u64::from(t)),
            None => self.holdtime() / 3,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tunnel_prefix_len > host_len(self.tunnel_address) {
            return Err(ConfigError::TunnelPrefixLen(self.tunnel_prefix_len));
        }
        if self.holdtime == 0 {
            return Err(ConfigError::ZeroHoldtime);
        }
        if let Some(t) = self.registration_timeout
            && (t == 0 || t > self.holdtime)
        {
            return Err(ConfigError::RegistrationTimeout(t));
        }
        if self.cache_limit == 0 || self.max_registrations_per_peer == 0 {
            return Err(ConfigError::ZeroCacheLimit);
        }
        if self.role == Role::Spoke && self.nhs.is_empty() {
            return Err(ConfigError::NoNhs);
        }
        let subnet = self.tunnel_subnet();
        let next_hops = self.nhs.iter().map(|n| n.tunnel);
        if let Some(nhs) = next_hops
            .chain(self.routes.iter().map(|r| r.next_hop))
            .find(|a| !subnet.contains(*a))
        {
            return Err(ConfigError::NhsOutsideSubnet(nhs));
        }
        if let Some(p) = self
            .advertised_prefixes
            .iter()
            .chain(self.routes.iter().map(|r| &r.prefix))
            .find(|p| p.addr().is_ipv4() != self.tunnel_address.is_ipv4())
        {
            return Err(ConfigError::PrefixFamily(*p));
        }
        if let Some(p) = self
            .advertised_prefixes
            .iter()
            .find(|p| p.contains(subnet.addr()) || subnet.contains(p.addr()))
        {
            return Err(ConfigError::PrefixInTunnelSubnet(*p));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_bounded_and_redacted() {
        assert_eq!(Password::new(b""), Err(ConfigError::PasswordLength(0)));
        assert_eq!(
            Password::new(b"123456789"),
            Err(ConfigError::PasswordLength(9))
        );
        let p = Password::new(b"s3cr3t").unwrap();
        assert_eq!(p.expose(), b"s3cr3t");
        let mut c = Config::new(
            Role::Hub,
            "10.1.1.1".parse().unwrap(),
            24,
            "198.18.0.1".parse().unwrap(),
        );
        c.password = Some(p);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn validation() {
        let mut c = Config::new(
            Role::Spoke,
            "10.1.1.2".parse().unwrap(),
            24,
            "198.18.0.2".parse().unwrap(),
        );
        assert_eq!(c.validate(), Err(ConfigError::NoNhs));
        c.nhs.push(NhsConfig {
            tunnel: "10.1.2.1".parse().unwrap(),
            nbma: "198.18.0.1".parse().unwrap(),
            priority: 0,
        });
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NhsOutsideSubnet(_))
        ));
        c.nhs[0].tunnel = "10.1.1.1".parse().unwrap();
        assert_eq!(c.validate(), Ok(()));
        c.advertised_prefixes
            .push(Prefix::new("10.0.0.0".parse().unwrap(), 8).unwrap());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::PrefixInTunnelSubnet(_))
        ));
        c.advertised_prefixes.clear();
        c.routes.push(Route {
            prefix: Prefix::new("192.168.0.0".parse().unwrap(), 16).unwrap(),
            next_hop: "10.1.2.1".parse().unwrap(),
        });
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NhsOutsideSubnet(_))
        ));
        c.routes[0].next_hop = "10.1.1.9".parse().unwrap();
        assert_eq!(c.validate(), Ok(()));
        c.routes[0].prefix = Prefix::host("2001:db8::1".parse().unwrap());
        assert!(matches!(c.validate(), Err(ConfigError::PrefixFamily(_))));
        c.routes.clear();
        c.holdtime = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroHoldtime));
    }
}
