//! Sans-IO IKEv2 (RFC 7296) for kube-dmvpn: bytes and time in, datagrams, SA keys and events
//! out. No clock reads, sockets or randomness inside: the caller injects them.
//!
//! - [`crypto`]: PRFs, prf+, SKEYSEED and keys (sections 2.13 to 2.18), Diffie-Hellman, the
//!   SK payload AEAD (RFC 5282, RFC 7634), injected randomness.
//! - [`proposal`]: strongSwan-style proposals, weak algorithms refused, responder selection.
//! - [`auth`]: identities and the [`auth::Authenticator`] trait, PSK (section 2.15) and
//!   certificate signatures (RFC 7427).
//! - [`nat`], [`cookie`], [`ts`]: NAT detection (2.23), cookies (2.6), selectors (2.9).
//! - [`Engine`]: every IKE SA of a node; the exchanges are in `exchange/`.
//! - [`signature`], [`cert`]: digital-signature authentication (RFC 7427, RFC 8420) and X.509
//!   chain validation with the identity binding of RFC 4945.
//! - [`fragment`]: IKE message fragmentation (RFC 7383).
//! - [`keylog`]: the opt-in key log for decrypting captures.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cert;
pub mod config;
pub mod cookie;
pub mod counters;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod event;
mod exchange;
pub mod fragment;
pub mod keylog;
pub mod nat;
pub mod proposal;
mod sa;
pub mod signature;
#[cfg(feature = "deterministic")]
pub mod testing;
mod timer;
pub mod ts;

pub use auth::psk::{Psk, PskAuthenticator};
pub use auth::signature::{SignatureAuthenticator, WallClock};
pub use auth::{AuthenticatedPeer, Authenticator, Identity};
pub use config::{Config, ConfigError, Lifetimes, Mode, UdpEncap};
pub use counters::Counters;
#[cfg(feature = "deterministic")]
pub use crypto::random::SeededRandom;
pub use crypto::random::{Random, SystemRng};
pub use engine::{Engine, IkeSaInfo, Transmit};
pub use error::DropReason;
pub use event::{ChildSaUp, DownReason, EspKeys, Event, FailReason};
pub use keylog::KeyLog;
pub use proposal::{EspProposal, IkeProposal, ProposalError};
