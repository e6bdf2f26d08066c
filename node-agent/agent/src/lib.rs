//! kube-dmvpn's node agent library: what the `dmvpn-agent` daemon and the `dmvpnctl` tool
//! share.
//!
//! - The daemon: [`settings`] turns the configuration (`dmvpn_crds::DmvpnNodeSpec`) into the
//!   engines' settings, [`driver`] runs one router over the OS traits (Linux or the fakes),
//!   [`ipsec`] is where SAs come from, [`agent`] opens the Linux devices and runs until
//!   SIGTERM or SIGINT, [`snapshot`] is the state it publishes for show commands and
//!   metrics.
//! - `dmvpnctl pcap`: the capture decoder ([`pcap`]).

pub mod agent;
pub mod driver;
pub mod ipsec;
pub mod pcap;
pub mod settings;
pub mod snapshot;
