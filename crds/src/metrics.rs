//! The `metrics` section: the Prometheus endpoint, where IOS has SNMP (NHRP-MIB, RFC 2677)
//! and `show` counters.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de;
use crate::error::Issue;

/// The metrics endpoint of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsSpec {
    /// Address and port of the HTTP listener serving `/metrics`; default `127.0.0.1:9469`.
    #[serde(
        default = "default_listen",
        deserialize_with = "de::text::<_, de::Listen>"
    )]
    #[schemars(schema_with = "crate::schema::listen_address")]
    pub listen: SocketAddr,
}

/// The default metrics port.
pub const DEFAULT_METRICS_PORT: u16 = 9469;

fn default_listen() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_METRICS_PORT)
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            listen: default_listen(),
        }
    }
}

impl MetricsSpec {
    pub(crate) fn check(&self, out: &mut Vec<Issue>) {
        if self.listen.port() == 0 {
            out.push(Issue::new(
                "metrics.listen",
                format!(
                    "port 0 picks a random port Prometheus cannot find: use a fixed one such as {}:{DEFAULT_METRICS_PORT}",
                    self.listen.ip()
                ),
            ));
        }
    }
}
