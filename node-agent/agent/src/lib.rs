//! kube-dmvpn's node agent library: what the `dmvpn-agent` daemon and the `dmvpnctl` tool
//! share.
//!
//! - The daemon: [`settings`] turns the configuration (`dmvpn_crds::DmvpnNodeSpec`) into the
//!   engines' settings, [`driver`] runs one router over the OS traits (Linux or the fakes),
//!   [`ipsec`] is where SAs come from, [`agent`] opens the Linux devices and runs until
//!   SIGTERM or SIGINT, [`snapshot`] is the state it publishes for show commands and
//!   metrics.
//! - [`show`]: `show dmvpn`, `show ip nhrp`, `show crypto ...` rendered from a snapshot, as
//!   Cisco-like text and as JSON.
//! - [`kube`]: `run --kube`, the agent under Kubernetes (gateway and route-agent modes).
//! - [`admin`]: the admin socket between `dmvpnctl` and the agent.
//! - [`metrics`]: Prometheus metrics at `/metrics`.
//! - [`pcap`]: the capture decoder behind `dmvpnctl pcap`.

pub mod admin;
pub mod agent;
pub mod driver;
pub mod ipsec;
pub mod kube;
pub mod metrics;
pub mod pcap;
pub mod settings;
pub mod show;
pub mod snapshot;

/// Whether an `accept(2)` error will pass: a connection aborted before it was taken, a
/// signal, or file descriptors exhausted for now (ENFILE, EMFILE).
pub(crate) fn accept_error_is_transient(e: &std::io::Error) -> bool {
    /// Too many open files in the system and in the process (errno(3) on Linux).
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::Interrupted
            | std::io::ErrorKind::WouldBlock
    ) || e.raw_os_error().is_some_and(|c| c == ENFILE || c == EMFILE)
}
