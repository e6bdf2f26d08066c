//! Injected randomness: nonces (RFC 7296 section 2.10), SPIs, cookie secrets (section 2.6),
//! lifetime jitter and Diffie-Hellman private keys.
//!
//! The engine never reads an entropy source by itself: it calls [`Random::fill`]. A product
//! passes [`SystemRng`] (ring's `SystemRandom`). Diffie-Hellman private keys are the one
//! exception to "everything through `fill`": ring only builds an `EphemeralPrivateKey` from
//! its sealed `SecureRandom` trait, which only `SystemRandom` and ring's deprecated test
//! `FixedSliceRandom` implement. So key generation always uses `SystemRandom`, except in
//! builds with the `deterministic` feature, where an RNG that says so through
//! [`Random::deterministic_dh`] has its key seeds drawn with `fill` and handed to ring through
//! `FixedSliceRandom`. That keeps the product path on ring's generator while simulations,
//! tests, benchmarks and fuzzing replay byte for byte from a seed.

use ring::rand::{SecureRandom, SystemRandom};

/// A source of random bytes, injected into the engine.
pub trait Random: Send {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);

    /// Whether Diffie-Hellman private keys are drawn from [`Random::fill`] instead of ring's
    /// `SystemRandom`: only in `deterministic` builds, for seeded simulations.
    #[cfg(feature = "deterministic")]
    fn deterministic_dh(&self) -> bool {
        false
    }
}

/// The operating system's generator, through ring: the product's [`Random`].
#[derive(Debug)]
pub struct SystemRng(SystemRandom);

impl Default for SystemRng {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemRng {
    /// ring's `SystemRandom`.
    pub fn new() -> Self {
        SystemRng(SystemRandom::new())
    }
}

impl Random for SystemRng {
    fn fill(&mut self, dest: &mut [u8]) {
        // getrandom does not fail on the Linux versions ring supports; should it, zeroed
        // bytes would be worse than stopping.
        if self.0.fill(dest).is_err() {
            panic!("the system random number generator failed");
        }
    }
}

/// A seeded generator (SplitMix64) for simulations, tests, benchmarks and fuzzing: the same
/// seed gives the same bytes, Diffie-Hellman keys included. Not cryptographic.
#[cfg(feature = "deterministic")]
#[derive(Debug, Clone)]
pub struct SeededRandom(pub u64);

#[cfg(feature = "deterministic")]
impl SeededRandom {
    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(feature = "deterministic")]
impl Random for SeededRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn deterministic_dh(&self) -> bool {
        true
    }
}

/// A random non-zero u64 (an IKE SPI, RFC 7296 section 3.1: zero means "not known yet").
pub(crate) fn nonzero_u64(rng: &mut dyn Random) -> u64 {
    loop {
        let mut b = [0; 8];
        rng.fill(&mut b);
        let v = u64::from_be_bytes(b);
        if v != 0 {
            return v;
        }
    }
}

/// A random u32 at or above 256 (an ESP SPI, RFC 4303 section 2.1: 0 to 255 are reserved).
pub(crate) fn esp_spi(rng: &mut dyn Random) -> u32 {
    loop {
        let mut b = [0; 4];
        rng.fill(&mut b);
        let v = u32::from_be_bytes(b);
        if v >= 256 {
            return v;
        }
    }
}

/// A random value in `0..bound` (0 for a bound of 0), for lifetime jitter.
pub(crate) fn below(rng: &mut dyn Random, bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    let mut b = [0; 8];
    rng.fill(&mut b);
    u64::from_be_bytes(b) % bound
}
