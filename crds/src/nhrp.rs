//! The `nhrp` section: NHRP (RFC 2332) with Cisco's DMVPN phase 3 extensions, what IOS
//! configures with `ip nhrp ...` under the tunnel interface.

use core::fmt;
use core::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::{self, Bounded};
use crate::error::Issue;
use crate::secret::SecretKeyRef;
use crate::{Context, Role};

/// The NHRP settings of the tunnel (`ip nhrp ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NhrpSpec {
    /// The NHRP network (IOS `ip nhrp network-id`), 1 to 4294967295: it only tells local
    /// tunnels apart and is not sent on the wire.
    #[serde(deserialize_with = "de::int::<_, NetworkId, _>")]
    #[schemars(range(min = 1, max = 4_294_967_295_u32))]
    pub network_id: u32,
    /// The cleartext password (IOS `ip nhrp authentication`) carried in the Authentication
    /// extension (RFC 2332 section 5.3.4); absent, none is sent and none is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<NhrpAuthentication>,
    /// Under Kubernetes, the Secret key holding the `authentication` password, in the agent's
    /// namespace. A configuration file writes `authentication` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_secret_ref: Option<SecretKeyRef>,
    /// Seconds the registrations and replies of this router stay valid (IOS
    /// `ip nhrp holdtime`, default 7200; the Holding Time of RFC 2332 section 5.2.0.1).
    #[serde(
        default = "default_hold_time",
        deserialize_with = "de::int::<_, Seconds16, _>"
    )]
    #[schemars(range(min = 1, max = 65535))]
    pub hold_time: u16,
    /// Seconds between registrations with each NHS (IOS `ip nhrp registration timeout`);
    /// absent, a third of `holdTime` as on IOS.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_int::<_, Seconds16, _>"
    )]
    #[schemars(range(min = 1, max = 65535))]
    pub registration_timeout: Option<u16>,
    /// Send Traffic Indications (redirects) for traffic that hairpins through this router
    /// (IOS `ip nhrp redirect`, DMVPN phase 3); absent, on for a hub and off for a spoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<bool>,
    /// Replicate multicast to every registered peer (IOS `ip nhrp map multicast dynamic`);
    /// absent, on for a hub and off for a spoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_multicast_dynamic: Option<bool>,
    /// The Next Hop Servers to register with (IOS `ip nhrp nhs` with `ip nhrp map`): at least
    /// one for a spoke; a hub may list hubs above it (hierarchical or hub-to-hub designs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<NhsSpec>,
    /// Act on redirects: resolve the destination and install a shortcut route (IOS
    /// `ip nhrp shortcut`, DMVPN phase 3); absent, on for a spoke and off for a hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortcut: Option<bool>,
}

/// One Next Hop Server (IOS `ip nhrp nhs 10.1.1.1 nbma 202.1.1.1 priority 0`, or the older
/// `ip nhrp nhs 10.1.1.1` with `ip nhrp map 10.1.1.1 202.1.1.1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NhsSpec {
    /// The NHS's tunnel address, inside the tunnel subnet.
    #[serde(deserialize_with = "de::text::<_, de::Address>")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub tunnel_address: IpAddr,
    /// The NHS's NBMA (underlay) address, of the underlay address's family.
    #[serde(deserialize_with = "de::text::<_, de::Address>")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub nbma_address: IpAddr,
    /// The NHS's preference (IOS `ip nhrp nhs ... priority`): 0, the default, is the most
    /// preferred, 255 the least.
    #[serde(default, deserialize_with = "de::int::<_, Priority, _>")]
    pub priority: u8,
}

/// The NHRP authentication password (IOS `ip nhrp authentication`), sent in clear in every
/// NHRP packet (RFC 2332 section 5.3.4); `Debug` prints `<redacted>` all the same, since the
/// same string is often reused as a pre-shared key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct NhrpAuthentication(#[schemars(length(min = 1, max = 8))] String);

impl NhrpAuthentication {
    /// Wraps a password; [`DmvpnNodeSpec::validate`](crate::DmvpnNodeSpec::validate) checks
    /// its length.
    pub fn new(password: impl Into<String>) -> Self {
        NhrpAuthentication(password.into())
    }

    /// The password, for the NHRP engine's Authentication extension.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NhrpAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhrpAuthentication(<redacted>)")
    }
}

/// The default hold time: IOS `ip nhrp holdtime` default (and FRR nhrpd's), 7200 seconds.
pub const DEFAULT_HOLD_TIME: u16 = 7200;
/// The longest IOS `ip nhrp authentication` password, 8 characters.
pub const MAX_AUTHENTICATION_LEN: usize = 8;

fn default_hold_time() -> u16 {
    DEFAULT_HOLD_TIME
}

struct NetworkId;
impl Bounded for NetworkId {
    const MIN: u64 = 1;
    const MAX: u64 = u32::MAX as u64;
    const EXPECTED: &'static str = "a network id from 1 to 4294967295 such as 1";
}

struct Seconds16;
impl Bounded for Seconds16 {
    const MIN: u64 = 1;
    const MAX: u64 = u16::MAX as u64;
    const EXPECTED: &'static str =
        "seconds from 1 to 65535 (a 16-bit field, RFC 2332 section 5.2.0.1) such as 7200";
}

struct Priority;
impl Bounded for Priority {
    const MIN: u64 = 0;
    const MAX: u64 = u8::MAX as u64;
    const EXPECTED: &'static str = "a priority from 0 (most preferred) to 255 such as 0";
}

impl NhrpSpec {
    /// Whether this router sends redirects: `redirect`, else on for a hub (IOS phase 3 hub
    /// `ip nhrp redirect`).
    pub fn redirect_enabled(&self, role: Role) -> bool {
        self.redirect.unwrap_or(role == Role::Hub)
    }

    /// Whether this router installs shortcuts: `shortcut`, else on for a spoke (IOS phase 3
    /// spoke `ip nhrp shortcut`).
    pub fn shortcut_enabled(&self, role: Role) -> bool {
        self.shortcut.unwrap_or(role == Role::Spoke)
    }

    /// Whether multicast is replicated to registered peers: `mapMulticastDynamic`, else on
    /// for a hub (IOS hub `ip nhrp map multicast dynamic`).
    pub fn map_multicast_dynamic_enabled(&self, role: Role) -> bool {
        self.map_multicast_dynamic.unwrap_or(role == Role::Hub)
    }

    /// Seconds between registrations: `registrationTimeout`, else a third of `holdTime` (at
    /// least 1), the IOS default of `ip nhrp registration timeout`.
    pub fn registration_interval(&self) -> u16 {
        self.registration_timeout
            .unwrap_or((self.hold_time / 3).max(1))
    }

    /// Checks the section; with `subnet_usable` false (a tunnel address already refused),
    /// the NHSs' tunnel addresses are not checked against the subnet.
    pub(crate) fn check(&self, cx: &Context, subnet_usable: bool, out: &mut Vec<Issue>) {
        if let Some(auth) = &self.authentication {
            let len = auth.0.len();
            if len == 0 || len > MAX_AUTHENTICATION_LEN {
                // The length only: the password itself never goes into a message.
                out.push(Issue::new(
                    "nhrp.authentication",
                    format!(
                        "the password is {len} bytes: IOS `ip nhrp authentication` takes 1 to 8 characters, such as \"s3cr3t\""
                    ),
                ));
            }
        }
        if let Some(r) = &self.authentication_secret_ref {
            r.check("nhrp.authenticationSecretRef", out);
            if self.authentication.is_some() {
                out.push(Issue::new(
                    "nhrp.authenticationSecretRef",
                    "both a password and a Secret for it: keep one, remove authentication or authenticationSecretRef",
                ));
            }
        }
        if let Some(t) = self.registration_timeout
            && t > self.hold_time
        {
            out.push(Issue::new(
                "nhrp.registrationTimeout",
                format!(
                    "registering every {t} s lets the {} s registrations expire in between: use at most holdTime, such as {} (a third, the IOS default)",
                    self.hold_time,
                    (self.hold_time / 3).max(1)
                ),
            ));
        }
        let example = cx.peer_example();
        if cx.role == Role::Spoke && self.servers.is_empty() {
            out.push(Issue::new(
                "nhrp.servers",
                format!(
                    "a spoke needs at least one NHS: add `- {{tunnelAddress: {example}, nbmaAddress: <the hub's underlay address>}}` (IOS `ip nhrp nhs {example}`)"
                ),
            ));
        }
        for (i, nhs) in self.servers.iter().enumerate() {
            let path = format!("nhrp.servers[{i}]");
            let t = nhs.tunnel_address;
            if t == cx.tunnel.addr() {
                out.push(Issue::new(
                    format!("{path}.tunnelAddress"),
                    format!(
                        "{t} is this router's own tunnel address: list the hub's, such as {example}"
                    ),
                ));
            } else if subnet_usable && !cx.tunnel.contains(&t) {
                out.push(Issue::new(
                    format!("{path}.tunnelAddress"),
                    format!(
                        "{t} is outside the tunnel subnet {}: an NHS is reached on the tunnel, use an address in it such as {example}",
                        cx.tunnel.trunc()
                    ),
                ));
            }
            if self.servers[..i].iter().any(|o| o.tunnel_address == t) {
                out.push(Issue::new(
                    format!("{path}.tunnelAddress"),
                    format!("NHS {t} is listed twice: remove one"),
                ));
            }
            let n = nhs.nbma_address;
            if n.is_ipv4() != cx.underlay.is_ipv4() {
                out.push(Issue::new(
                    format!("{path}.nbmaAddress"),
                    format!(
                        "{n} is not of the family of underlay.address {}: the NHS must be reachable from it, use an {} address",
                        cx.underlay,
                        if cx.underlay.is_ipv4() { "IPv4" } else { "IPv6" }
                    ),
                ));
            } else if n == cx.underlay {
                out.push(Issue::new(
                    format!("{path}.nbmaAddress"),
                    format!("{n} is this router's own underlay address: list the hub's"),
                ));
            } else if n.is_unspecified() || n.is_multicast() {
                out.push(Issue::new(
                    format!("{path}.nbmaAddress"),
                    format!("{n} is not a unicast address: use the hub's underlay address, such as 198.18.0.1"),
                ));
            }
        }
    }
}
