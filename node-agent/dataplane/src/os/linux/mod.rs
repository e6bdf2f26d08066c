//! Linux implementations of the OS traits: the TUN device through tun-rs (with TUN
//! offloads: GSO super-packets split on read, GRO on write), UDP through quinn-udp
//! (`recvmmsg`, GRO, GSO) on a tokio socket, routes through rtnetlink. They need a tokio
//! runtime with IO enabled.

mod link;
mod route;
mod tun;
mod udp;

pub use route::{DEFAULT_ROUTE_PROTOCOL, LinuxRoutes, MAIN_TABLE};
pub use tun::{LinuxTun, SEGMENTS, TunWrites};
pub use udp::LinuxUdp;
