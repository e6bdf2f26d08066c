//! Interop of dmvpn-ike and dmvpn-esp with strongSwan (issue 4): the `dmvpn-ike-peer` driver,
//! which runs the sans-IO IKEv2 engine (RFC 7296) on real UDP sockets with a minimal ESP/GRE
//! path (RFC 4303, RFC 3948), and the network-namespace tests in `tests/strongswan.rs` that
//! put it face to face with charon. Test-only; never part of the product.
//!
//! - [`cli`]: the driver's flags and the engine configuration they make.
//! - [`dataplane`]: ESP SAs from CHILD_SA events, GRE probes sealed and opened.
//! - [`peer`]: the event loop and the control commands.
//! - [`summary`]: the JSON the driver reports, read back by the tests.

pub mod cli;
pub mod dataplane;
pub mod peer;
pub mod summary;
