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

/// Moves datagrams between two engines (`a` at its own address, `b` at its own) until
/// neither has anything to send, at `now`; returns how many moved. A pair that just
/// initiated comes out established, past IKE_SA_INIT and IKE_AUTH, deterministically.
pub fn exchange(a: &mut Engine, b: &mut Engine, now: Instant) -> usize {
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some(t) = a.poll_transmit() {
            b.handle_datagram(now, t.remote, t.local, &t.payload);
            any = true;
            moved += 1;
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, t.remote, t.local, &t.payload);
            any = true;
            moved += 1;
        }
        if !any || moved > 10_000 {
            return moved;
        }
    }
}

/// [`pair`], with the spoke's IKE SA and CHILD_SA to the hub established (events drained).
pub fn established_pair(seed: u64, now: Instant) -> (Engine, Engine) {
    let (mut hub, mut spoke) = pair(seed, now);
    spoke.initiate(now, HUB);
    exchange(&mut spoke, &mut hub, now);
    while hub.poll_event().is_some() || spoke.poll_event().is_some() {}
    (hub, spoke)
}
