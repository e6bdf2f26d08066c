//! Linux implementations of the OS traits: the TUN device through tun-rs, UDP through
//! quinn-udp (`recvmmsg`, GRO) on a tokio socket, routes through rtnetlink. They need a
//! tokio runtime with IO enabled.

mod route;
mod tun;
mod udp;

pub use route::{DEFAULT_ROUTE_PROTOCOL, LinuxRoutes, MAIN_TABLE};
pub use tun::LinuxTun;
pub use udp::{LinuxUdp, RecvDrops};
