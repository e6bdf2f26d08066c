//! ESP security associations of a DMVPN router (RFC 4303): seal and open in place into the
//! caller's buffers, anti-replay, lifetimes and counters. Sans-IO: no sockets, no clock (time
//! is an argument), no allocation per packet; the crypto is ring's.
//!
//! - [`algorithm`]: the AEAD transforms (AES-GCM-16 per RFC 4106, ChaCha20-Poly1305 per RFC
//!   7634), strongSwan-style proposal parsing, key material that never prints.
//! - [`sa`]: [`OutboundSa::seal`] and [`InboundSa::open`], transport and tunnel mode alike.
//! - [`replay`]: the RFC 6479 bitmap window and ESN inference (RFC 4303 section 3.4.3,
//!   Appendix A).
//! - [`lifetime`]: soft and hard limits in bytes, packets and time (RFC 4301 section 4.4.2.1).
//! - [`counters`]: Cisco `show crypto ipsec sa` counters.
//! - [`sad`]: the SA database, keyed by inbound SPI, with make-before-break rekeys.
//!
//! ```
//! use std::time::Instant;
//! use dmvpn_esp::{Algorithm, InboundSa, KeyMaterial, OutboundSa, SaConfig, SequenceNumbers};
//! use dmvpn_esp::sa::{NEXT_HEADER_GRE, PAYLOAD_OFFSET, sealed_len};
//!
//! let now = Instant::now();
//! let key = KeyMaterial::new(Algorithm::AesGcm16_256, &[0x42; 36])?;
//! let config = SaConfig {
//!     spi: 0xc0ff_ee00,
//!     sequence_numbers: SequenceNumbers::Short,
//!     lifetime: Default::default(),
//! };
//! let mut tx = OutboundSa::new(config, &key, now)?;
//! let mut rx = InboundSa::new(config, &key, now)?;
//!
//! let gre = [0x20, 0x00, 0x08, 0x00, 0, 0, 0, 1];
//! let mut buf = [0u8; 128];
//! buf[PAYLOAD_OFFSET..][..gre.len()].copy_from_slice(&gre);
//! let len = tx.seal(now, &mut buf, gre.len(), NEXT_HEADER_GRE)?;
//! assert_eq!(len, sealed_len(gre.len()));
//!
//! let opened = rx.open(now, &mut buf[..len])?;
//! assert_eq!(&buf[opened.payload], &gre);
//! assert_eq!(opened.next_header, NEXT_HEADER_GRE);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod algorithm;
pub mod counters;
pub mod lifetime;
pub mod replay;
pub mod sa;
pub mod sad;

#[cfg(test)]
mod known_answer;

pub use algorithm::{Algorithm, ConfigError, KeyMaterial, Proposal, SequenceNumbers};
pub use counters::{InboundCounters, OutboundCounters, SadCounters};
pub use lifetime::{LifetimeConfig, LifetimeEvent, Limits};
pub use replay::{ReplayError, ReplayWindow};
pub use sa::{InboundSa, OpenError, Opened, OutboundSa, SaConfig, SealError};
pub use sad::{Direction, Sad, SadError, SadEvent};
