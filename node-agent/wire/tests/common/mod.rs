//! The shared test support (dmvpn-testkit), under the name the tests use.

pub use dmvpn_testkit::*;
