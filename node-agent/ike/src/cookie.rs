//! Stateless cookies against half-open SA floods (RFC 7296 section 2.6):
//! `Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)`, with SHA-256 and a
//! secret that rotates; cookies of the previous secret stay valid for one period.

use core::net::IpAddr;
use std::time::{Duration, Instant};

use ring::digest;

use crate::crypto::random::Random;

/// Bytes of a cookie: the version byte and a SHA-256 hash (RFC 7296 section 2.6 allows 1 to
/// 64 bytes).
pub const COOKIE_LEN: usize = 33;

/// The cookie secrets: the current one and the one before.
pub(crate) struct CookieJar {
    version: u8,
    current: [u8; 32],
    previous: Option<[u8; 32]>,
    lifetime: Duration,
    rotate_at: Instant,
}

impl core::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieJar")
            .field("version", &self.version)
            .field("rotate_at", &self.rotate_at)
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    pub(crate) fn new(rng: &mut dyn Random, now: Instant, lifetime: Duration) -> Self {
        let mut current = [0; 32];
        rng.fill(&mut current);
        CookieJar {
            version: 0,
            current,
            previous: None,
            lifetime,
            rotate_at: now + lifetime,
        }
    }

    /// When the secret next changes.
    pub(crate) fn rotate_at(&self) -> Instant {
        self.rotate_at
    }

    /// Draws a new secret (RFC 7296 section 2.6: "the responder should change the value of
    /// <secret> frequently").
    pub(crate) fn rotate(&mut self, rng: &mut dyn Random, now: Instant) {
        self.previous = Some(self.current);
        rng.fill(&mut self.current);
        self.version = self.version.wrapping_add(1);
        self.rotate_at = now + self.lifetime;
    }

    fn hash(secret: &[u8; 32], version: u8, ni: &[u8], ip: IpAddr, spi_i: u64) -> [u8; COOKIE_LEN] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(ni);
        match ip {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        ctx.update(&spi_i.to_be_bytes());
        ctx.update(secret);
        let mut out = [0; COOKIE_LEN];
        out[0] = version;
        out[1..].copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// The cookie for an initiator.
    pub(crate) fn cookie(&self, ni: &[u8], ip: IpAddr, spi_i: u64) -> [u8; COOKIE_LEN] {
        Self::hash(&self.current, self.version, ni, ip, spi_i)
    }

    /// Whether `cookie` is one we gave this initiator with the current or previous secret.
    pub(crate) fn check(&self, cookie: &[u8], ni: &[u8], ip: IpAddr, spi_i: u64) -> bool {
        let Some(&version) = cookie.first() else {
            return false;
        };
        let secret = if version == self.version {
            &self.current
        } else if version == self.version.wrapping_sub(1) {
            match &self.previous {
                Some(p) => p,
                None => return false,
            }
        } else {
            return false;
        };
        let want = Self::hash(secret, version, ni, ip, spi_i);
        // Not secret-dependent in a way an attacker can probe byte by byte: the hash is keyed.
        want.as_slice() == cookie
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random::SeededRandom;

    #[test]
    fn cookies_survive_one_rotation_only() {
        let mut rng = SeededRandom(3);
        let t0 = Instant::now();
        let mut jar = CookieJar::new(&mut rng, t0, Duration::from_secs(60));
        let ip: IpAddr = "198.18.0.9".parse().unwrap();
        let c = jar.cookie(b"nonce", ip, 42);
        assert!(jar.check(&c, b"nonce", ip, 42));
        assert!(!jar.check(&c, b"nonce", ip, 43));
        assert!(!jar.check(&c, b"nonce", "198.18.0.8".parse().unwrap(), 42));
        assert!(!jar.check(&c[..10], b"nonce", ip, 42));
        jar.rotate(&mut rng, t0);
        assert!(jar.check(&c, b"nonce", ip, 42));
        assert_ne!(jar.cookie(b"nonce", ip, 42), c);
        jar.rotate(&mut rng, t0);
        assert!(!jar.check(&c, b"nonce", ip, 42));
    }
}
