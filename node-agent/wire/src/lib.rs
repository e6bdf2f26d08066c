//! Wire formats of a DMVPN router, in the smoltcp style.
//!
//! Every format has a zero-copy **packet view** (`Packet<T: AsRef<[u8]>>`, built with
//! `new_checked`, typed accessors over byte ranges) and a **representation** (`Repr`, with
//! `parse`, `buffer_len` and `emit`). Parsing never panics, never allocates and never trusts a
//! length field: every length is checked against the bytes actually present, and each failure
//! is a typed [`Error`]. IANA registries are open enums that keep unknown values, and unknown
//! extensions or payloads survive a parse → emit round trip byte for byte.
//!
//! Formats:
//! - [`gre`]: GRE (RFC 2784, RFC 2890) and GRE-in-UDP (RFC 8086).
//! - [`nhrp`]: NHRP (RFC 2332) with the Cisco DMVPN extensions.
//! - [`ikev2`]: IKEv2 messages and payloads (RFC 7296, RFC 7383, RFC 7427).
//! - [`esp`]: ESP framing (RFC 4303); [`udp_encap`]: UDP encapsulation on port 4500 (RFC 3948).
//! - [`ipv4`], [`ipv6`], [`udp`]: the minimal IP and UDP views the dataplane needs.

#![no_std]

#[cfg(test)]
extern crate std;

#[macro_use]
mod macros;

pub mod checksum;
mod error;
pub mod esp;
pub mod gre;
mod hex;
pub mod ikev2;
pub mod ipv4;
pub mod ipv6;
pub mod nhrp;
mod seq;
pub mod udp;
pub mod udp_encap;

pub use error::{Error, Result};
pub use hex::Hex;
pub use seq::{Element, Seq, SeqIter};
