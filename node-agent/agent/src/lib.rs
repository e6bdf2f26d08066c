//! kube-dmvpn's node agent library: what the `dmvpn-agent` daemon and the `dmvpnctl` tool share.
//!
//! Today it holds the capture decoder behind `dmvpnctl pcap`; the agent itself (TUN
//! dataplane, NHRP and IKE drivers, admin socket) arrives with issue 5.

pub mod pcap;
pub mod snapshot;
