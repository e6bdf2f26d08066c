//! Helpers for simulations and fuzzing (feature `deterministic`): two engines on fixed
//! addresses with seeded randomness.

use core::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use crate::{Config, Engine, PskAuthenticator, SeededRandom};

/// The underlay address of the responder (hub) of [`pair`].
pub const HUB: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
/// The underlay address of the initiator (spoke) of [`pair`].
pub const SPOKE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));

/// A configuration with the PSK `psk` for every peer, key log on.
pub fn config(local: IpAddr, psk: &[u8]) -> Config {
    let mut c = Config::new(local, Arc::new(PskAuthenticator::new(psk)));
    c.key_log = true;
    c
}

/// A hub and a spoke engine with default configurations and seeded RNGs.
///
/// # Panics
/// Never: the default configuration is valid.
#[allow(clippy::expect_used)]
pub fn pair(seed: u64, now: Instant) -> (Engine, Engine) {
    let hub = Engine::new(config(HUB, b"fuzz"), Box::new(SeededRandom(seed)), now)
        .expect("valid configuration");
    let spoke = Engine::new(
        config(SPOKE, b"fuzz"),
        Box::new(SeededRandom(seed ^ 0x5a5a)),
        now,
    )
    .expect("valid configuration");
    (hub, spoke)
}
