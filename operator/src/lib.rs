//! The kube-dmvpn operator: reconciles DmvpnHub and DmvpnSpoke sites into DmvpnNodes on their
//! gateway nodes (issue 6), shaped like kube-rs's controller-rs.
//!
//! - [`plan`]: pure planning (gateway choice, NBMA address discovery, IPAM, rendering).

pub mod plan;
