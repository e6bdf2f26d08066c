//! The `admin` section: the local socket `dmvpnctl` talks to, the agent's equivalent of the
//! IOS exec prompt (`show dmvpn`, `clear ip nhrp`).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Issue;

/// The admin interface of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminSpec {
    /// The Unix socket `dmvpnctl` connects to for `show` and `clear` commands; an absolute
    /// path, default `/run/dmvpn/agent.sock`.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
}

/// The default admin socket.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/dmvpn/agent.sock";

/// The longest Unix socket path: `sun_path` is 108 bytes with its terminating NUL (unix(7)).
const MAX_SOCKET_PATH: usize = 107;

fn default_socket() -> PathBuf {
    PathBuf::from(DEFAULT_ADMIN_SOCKET)
}

impl Default for AdminSpec {
    fn default() -> Self {
        AdminSpec {
            socket: default_socket(),
        }
    }
}

impl AdminSpec {
    pub(crate) fn check(&self, out: &mut Vec<Issue>) {
        let s = &self.socket;
        if !s.is_absolute() {
            out.push(Issue::new(
                "admin.socket",
                format!(
                    "`{}` is relative: use an absolute path such as {DEFAULT_ADMIN_SOCKET}",
                    s.display()
                ),
            ));
        } else if s.as_os_str().len() > MAX_SOCKET_PATH {
            out.push(Issue::new(
                "admin.socket",
                format!(
                    "the path is {} bytes, longer than a Unix socket path may be (107): use a shorter one such as {DEFAULT_ADMIN_SOCKET}",
                    s.as_os_str().len()
                ),
            ));
        }
    }
}
