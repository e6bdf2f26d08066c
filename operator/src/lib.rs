//! The kube-dmvpn operator: reconciles DmvpnHub and DmvpnSpoke sites into DmvpnNodes on their
//! gateway nodes (issue 6), shaped like kube-rs's controller-rs.
//!
//! - [`plan`]: pure planning (gateway choice, NBMA address discovery, IPAM, rendering).
//! - [`controller`]: the reconcilers, applying plans through the API.
//! - [`lease`]: leader election through a coordination.k8s.io Lease.
//! - [`metrics`], [`http`]: `/metrics`, `/healthz`, `/readyz`.

pub mod controller;
pub mod http;
pub mod lease;
pub mod metrics;
pub mod plan;
