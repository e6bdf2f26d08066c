//! The `underlay` section: the NBMA side, what IOS names with `tunnel source`.

use core::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de;
use crate::error::Issue;

/// The underlay (NBMA network, RFC 2332 section 2) this router reaches its peers over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnderlaySpec {
    /// This router's NBMA address (IOS `tunnel source`), IPv4 or IPv6: GRE, IKE (UDP 500 and
    /// 4500) and ESP leave from it, and NHRP registers it.
    #[serde(deserialize_with = "de::text::<_, de::Address>")]
    #[schemars(schema_with = "crate::schema::ip_address")]
    pub address: IpAddr,
}

impl UnderlaySpec {
    pub(crate) fn check(&self, out: &mut Vec<Issue>) {
        let a = self.address;
        let broadcast = matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
        if a.is_unspecified() || a.is_multicast() || broadcast {
            out.push(Issue::new(
                "underlay.address",
                format!(
                    "`{a}` is not a unicast address peers can reach: use this router's own address, such as 198.18.0.1"
                ),
            ));
        }
    }
}
