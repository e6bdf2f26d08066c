//! Helpers for simulations and fuzzing (feature `deterministic`): two engines on fixed
//! addresses with seeded randomness.

use core::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use ring::rand::SystemRandom;

use crate::cert::{CertError, Credentials, TrustStore};
use crate::{Config, Engine, PskAuthenticator, SeededRandom, SignatureAuthenticator, WallClock};

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

/// A configuration authenticating with certificates (RFC 7427): our PEM chain (end entity
/// first) and PKCS #8 key, peers checked against the CAs of `ca_pem` at `clock`; key log on.
///
/// # Errors
/// The [`CertError`] of a chain, key or CA that does not load.
pub fn certificate_config(
    local: IpAddr,
    chain_pem: &[u8],
    key_pem: &[u8],
    ca_pem: &[u8],
    clock: WallClock,
) -> Result<Config, CertError> {
    let credentials = Credentials::from_pem(chain_pem, key_pem, &SystemRandom::new())?;
    let trust = TrustStore::from_pem(ca_pem)?;
    let mut c = config(local, b"unused");
    c.authenticator = Arc::new(SignatureAuthenticator::new(credentials, trust, clock));
    Ok(c)
}

/// A hub and a spoke engine with default configurations and seeded RNGs.
pub fn pair(seed: u64, now: Instant) -> (Engine, Engine) {
    pair_with(seed, now, config(HUB, b"fuzz"), config(SPOKE, b"fuzz"))
}

/// A hub and a spoke engine with these configurations and seeded RNGs.
///
/// # Panics
/// When a configuration is invalid.
#[allow(clippy::expect_used)]
pub fn pair_with(seed: u64, now: Instant, hub: Config, spoke: Config) -> (Engine, Engine) {
    let hub = Engine::new(hub, Box::new(SeededRandom(seed)), now).expect("valid configuration");
    let spoke = Engine::new(spoke, Box::new(SeededRandom(seed ^ 0x5a5a)), now)
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
    establish(pair(seed, now), now)
}

/// Brings up the spoke's IKE SA and CHILD_SA to the hub (events drained).
pub fn establish((mut hub, mut spoke): (Engine, Engine), now: Instant) -> (Engine, Engine) {
    spoke.initiate(now, HUB);
    exchange(&mut spoke, &mut hub, now);
    while hub.poll_event().is_some() || spoke.poll_event().is_some() {}
    (hub, spoke)
}
