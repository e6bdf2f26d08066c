//! The `tunnel` section: the multipoint GRE interface, what IOS configures under
//! `interface Tunnel0` with `tunnel mode gre multipoint`.

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::{self, Bounded};
use crate::error::Issue;

/// The tunnel interface (`interface Tunnel0`, `tunnel mode gre multipoint`): a TUN device
/// carrying the overlay, whose packets travel in GRE (RFC 2784, key per RFC 2890).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TunnelSpec {
    /// The TUN device's name, standing for IOS `interface Tunnel0`: a Linux interface name of
    /// 1 to 15 bytes without `/`, `:` or white space.
    pub interface: String,
    /// This router's tunnel address with the tunnel subnet's prefix length: IOS
    /// `ip address 10.1.1.1 255.255.255.0` is `10.1.1.1/24`.
    #[serde(deserialize_with = "de::text::<_, de::Interface>")]
    #[schemars(schema_with = "crate::schema::interface_address")]
    pub address: IpNet,
    /// The tunnel MTU in bytes (IOS `ip mtu`); absent, the agent derives it from the underlay
    /// MTU minus the GRE, ESP and UDP overhead. 576 to 9000 for an IPv4 tunnel (RFC 791's
    /// datagram every host accepts), 1280 to 9000 for IPv6 (RFC 8200 section 5).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_int::<_, Mtu, _>"
    )]
    #[schemars(range(min = 576, max = 9000))]
    pub mtu: Option<u16>,
    /// The GRE key (IOS `tunnel key`), sent in every GRE header (RFC 2890 section 2.1); all
    /// routers of one DMVPN cloud use the same key. Absent, GRE goes without a key.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_int::<_, Key, _>"
    )]
    pub key: Option<u32>,
}

/// The smallest IPv4 tunnel MTU: the datagram every IPv4 host must accept (RFC 791).
pub const MIN_MTU_IPV4: u16 = 576;
/// The smallest IPv6 tunnel MTU: the IPv6 minimum link MTU (RFC 8200 section 5).
pub const MIN_MTU_IPV6: u16 = 1280;
/// The largest tunnel MTU: a jumbo-frame underlay's 9000 bytes.
pub const MAX_MTU: u16 = 9000;

struct Mtu;
impl Bounded for Mtu {
    const MIN: u64 = MIN_MTU_IPV4 as u64;
    const MAX: u64 = MAX_MTU as u64;
    const EXPECTED: &'static str = "an MTU in bytes from 576 to 9000 such as 1400";
}

struct Key;
impl Bounded for Key {
    const MIN: u64 = 0;
    const MAX: u64 = u32::MAX as u64;
    const EXPECTED: &'static str = "a GRE key from 0 to 4294967295 such as 100";
}

/// The longest Linux interface name (`IFNAMSIZ` 16 with its terminating NUL).
const MAX_INTERFACE_NAME: usize = 15;

impl TunnelSpec {
    /// Checks the section; false when the address gives no usable tunnel subnet, so that the
    /// checks against the subnet are skipped rather than repeat the problem.
    pub(crate) fn check(&self, out: &mut Vec<Issue>) -> bool {
        let name = &self.interface;
        if name.is_empty()
            || name.len() > MAX_INTERFACE_NAME
            || name == "."
            || name == ".."
            || name.contains(['/', ':'])
            || name.chars().any(char::is_whitespace)
        {
            out.push(Issue::new(
                "tunnel.interface",
                format!(
                    "`{name}` is not a Linux interface name: use 1 to 15 bytes without `/`, `:` or spaces, such as dmvpn0"
                ),
            ));
        }
        let a = self.address;
        let host_len = a.max_prefix_len();
        let subnet_usable = a.prefix_len() < host_len - 1;
        if !subnet_usable {
            out.push(Issue::new(
                "tunnel.address",
                format!(
                    "`{a}` leaves no room for peers: write the tunnel subnet's prefix length, such as {}/{}",
                    a.addr(),
                    if a.addr().is_ipv4() { 24 } else { 64 }
                ),
            ));
        } else if a.addr() == a.network() || (a.addr().is_ipv4() && a.addr() == a.broadcast()) {
            out.push(Issue::new(
                "tunnel.address",
                format!(
                    "`{a}` is the subnet's {} address, not a host address: use one such as {}/{}",
                    if a.addr() == a.network() {
                        "network"
                    } else {
                        "broadcast"
                    },
                    a.hosts().next().unwrap_or(a.addr()),
                    a.prefix_len()
                ),
            ));
        }
        if let Some(mtu) = self.mtu
            && a.addr().is_ipv6()
            && mtu < MIN_MTU_IPV6
        {
            out.push(Issue::new(
                "tunnel.mtu",
                format!(
                    "{mtu} is below the IPv6 minimum link MTU (RFC 8200 section 5): use 1280 to 9000"
                ),
            ));
        }
        subnet_usable
    }
}
