//! The engine's configuration: identity, credentials, proposals, CHILD_SA shape, NAT-T,
//! timers and limits. Defaults follow strongSwan and Cisco where they agree.

use core::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{AuthError, Authenticator, Identity};
use crate::proposal::{EspProposal, IkeProposal, ProposalError};
use crate::ts::{PROTOCOL_GRE, Selector};

/// The CHILD_SA mode (RFC 7296 section 1.3.1; RFC 4301 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Transport mode: the GRE packet is the ESP payload (the DMVPN shape).
    Transport,
    /// Tunnel mode: the whole inner IP packet is the ESP payload.
    Tunnel,
}

/// When IKE and ESP move to UDP port 4500 (RFC 7296 section 2.23, RFC 3948).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpEncap {
    /// Always, after IKE_SA_INIT, announcing a fake NAT_DETECTION_SOURCE_IP so the peer
    /// encapsulates too (strongSwan `encap = yes`). The default: our ESP only exists in UDP.
    Forced,
    /// Only when a NAT is detected.
    Auto,
}

/// Soft and hard lifetimes of an SA, with random jitter taken off the soft one (so that two
/// peers do not rekey at the same moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Rekey after this long, minus up to `jitter`.
    pub soft: Duration,
    /// Delete after this long.
    pub hard: Duration,
    /// The most taken off `soft`.
    pub jitter: Duration,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A refused proposal.
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    /// No IKE proposal.
    #[error("no IKE proposal: add aes256gcm16-prfsha256-x25519")]
    NoIkeProposal,
    /// No ESP proposal.
    #[error("no ESP proposal: add aes256gcm16")]
    NoEspProposal,
    /// A soft lifetime not below its hard one.
    #[error("the soft lifetime must be shorter than the hard one")]
    Lifetime,
    /// A zero retransmission timeout or try count.
    #[error("retransmission needs a timeout above zero and at least one try")]
    Retransmission,
    /// Our certificate does not vouch for our identity (RFC 4945 section 3.1): with
    /// certificates, the default identity (our address) must be an iPAddress subjectAltName.
    #[error("our certificate does not name our identity: {0}")]
    Identity(AuthError),
    /// A maximum datagram size too small for an IKE fragment (RFC 7383 section 2.5.1).
    #[error("the maximum datagram size leaves no room for an IKE fragment: use at least 576")]
    MaxDatagram,
}

/// The configuration of an [`crate::Engine`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Our underlay address: the source of IKE and ESP, and our default identity.
    pub local_addr: IpAddr,
    /// Our IKE identity; `None` = `ID_IPV4_ADDR`/`ID_IPV6_ADDR` of `local_addr`.
    pub identity: Option<Identity>,
    /// How we authenticate and check peers (PSK, or signatures).
    pub authenticator: Arc<dyn Authenticator>,
    /// IKE proposals, in preference order.
    pub ike_proposals: Vec<IkeProposal>,
    /// ESP proposals, in preference order; groups in the first one turn PFS on for rekeys.
    pub esp_proposals: Vec<EspProposal>,
    /// The mode we request as initiator (transport, the DMVPN shape, by default).
    pub mode: Mode,
    /// Whether we accept a transport-mode request as responder; if not, we answer tunnel
    /// mode (RFC 7296 section 1.3.1).
    pub allow_transport: bool,
    /// The protocol of our selectors (GRE).
    pub ts_protocol: u8,
    /// What a peer may put in its own selectors when we respond (narrowed, section 2.9).
    pub ts_remote_allowed: Vec<Selector>,
    /// UDP encapsulation policy.
    pub udp_encap: UdpEncap,
    /// NAT keepalive interval when we are behind a NAT or force encapsulation; `None` off.
    pub nat_keepalive: Option<Duration>,
    /// First retransmission timeout; doubled each try (RFC 7296 section 2.1).
    pub retransmit_timeout: Duration,
    /// Transmissions of a request before the peer is declared dead.
    pub retransmit_tries: u32,
    /// Liveness check after this long without hearing from the peer; `None` off.
    pub dpd_interval: Option<Duration>,
    /// On-demand liveness check (IOS `crypto ikev2 dpd ... on-demand`, RFC 7296 section
    /// 2.4): after traffic went to the peer and nothing came back for this long, as told by
    /// [`crate::Engine::traffic`]; `None` off.
    pub dpd_on_demand: Option<Duration>,
    /// IKE SA lifetimes.
    pub ike_lifetime: Lifetimes,
    /// CHILD_SA lifetimes.
    pub child_lifetime: Lifetimes,
    /// How long a rekeyed CHILD_SA lives beside its successor before the rekey initiator
    /// deletes it (make-before-break).
    pub rekey_overlap: Duration,
    /// Half-open SAs above which IKE_SA_INIT requests must carry a cookie (section 2.6).
    pub cookie_threshold: usize,
    /// Half-open SAs above which even cookie holders are dropped.
    pub half_open_limit: usize,
    /// How long a half-open SA waits for IKE_AUTH.
    pub half_open_timeout: Duration,
    /// How often the cookie secret changes.
    pub cookie_secret_lifetime: Duration,
    /// Whether to keep SA keys in [`crate::Engine::key_log`] (off by default).
    pub key_log: bool,
    /// The most IKE SA entries the key log keeps; the oldest go first.
    pub key_log_ike_sas: usize,
    /// The most ESP SA entries (one per direction) the key log keeps; the oldest go first.
    pub key_log_esp_sas: usize,
    /// The largest IP datagram (IP and UDP headers included) an encrypted message may fill
    /// before it is sent as SKF fragments, when both sides announced
    /// IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 section 2.5.1); `None` = the RFC's 576 bytes
    /// for IPv4 and 1280 for IPv6.
    pub max_datagram: Option<usize>,
    /// How long the fragments of an incomplete message are kept (RFC 7383 section 2.6
    /// leaves it to the implementation).
    pub fragment_timeout: Duration,
}

impl Config {
    /// A configuration with the defaults: AES-256-GCM with SHA-256 and X25519 for IKE,
    /// AES-256-GCM for ESP, transport mode with GRE selectors, forced UDP encapsulation,
    /// keepalives every 20 s, retransmissions at 1, 2, 4, 8 and 16 s, DPD after 30 s idle,
    /// IKE SA rekeyed after about 4 h, CHILD_SA after about 1 h, cookies above 64 half-open
    /// SAs.
    pub fn new(local_addr: IpAddr, authenticator: Arc<dyn Authenticator>) -> Self {
        Config {
            local_addr,
            identity: None,
            authenticator,
            ike_proposals: vec![IkeProposal {
                encryption: vec![dmvpn_esp::Algorithm::AesGcm16_256],
                prf: vec![crate::crypto::prf::Prf::HmacSha256],
                groups: vec![crate::crypto::dh::Group::X25519],
            }],
            esp_proposals: vec![EspProposal {
                encryption: vec![dmvpn_esp::Algorithm::AesGcm16_256],
                sequence_numbers: vec![dmvpn_esp::SequenceNumbers::Short],
                groups: Vec::new(),
            }],
            mode: Mode::Transport,
            allow_transport: true,
            ts_protocol: PROTOCOL_GRE,
            ts_remote_allowed: vec![
                Selector::any(false, PROTOCOL_GRE),
                Selector::any(true, PROTOCOL_GRE),
            ],
            udp_encap: UdpEncap::Forced,
            nat_keepalive: Some(Duration::from_secs(20)),
            retransmit_timeout: Duration::from_secs(1),
            retransmit_tries: 5,
            dpd_interval: Some(Duration::from_secs(30)),
            dpd_on_demand: None,
            ike_lifetime: Lifetimes {
                soft: Duration::from_secs(4 * 3600),
                hard: Duration::from_secs(4 * 3600 + 1800),
                jitter: Duration::from_secs(600),
            },
            child_lifetime: Lifetimes {
                soft: Duration::from_secs(3600),
                hard: Duration::from_secs(3600 + 600),
                jitter: Duration::from_secs(300),
            },
            rekey_overlap: Duration::from_secs(5),
            cookie_threshold: 64,
            half_open_limit: 4096,
            half_open_timeout: Duration::from_secs(30),
            cookie_secret_lifetime: Duration::from_secs(300),
            key_log: false,
            key_log_ike_sas: 1024,
            key_log_esp_sas: 4096,
            max_datagram: None,
            fragment_timeout: Duration::from_secs(30),
        }
    }

    /// Replaces the proposals with strongSwan-style strings.
    ///
    /// # Errors
    /// The first refused proposal.
    pub fn with_proposals(mut self, ike: &[&str], esp: &[&str]) -> Result<Self, ConfigError> {
        self.ike_proposals = ike
            .iter()
            .map(|s| IkeProposal::parse(s))
            .collect::<Result<_, _>>()?;
        self.esp_proposals = esp
            .iter()
            .map(|s| EspProposal::parse(s))
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// The maximum datagram size in effect (see [`Config::max_datagram`]).
    pub fn max_datagram_len(&self) -> usize {
        self.max_datagram.unwrap_or(if self.local_addr.is_ipv6() {
            crate::fragment::DEFAULT_MAX_DATAGRAM_V6
        } else {
            crate::fragment::DEFAULT_MAX_DATAGRAM_V4
        })
    }

    /// Our identity.
    pub fn own_identity(&self) -> Identity {
        self.identity
            .clone()
            .unwrap_or_else(|| Identity::address(self.local_addr))
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ike_proposals.is_empty() {
            return Err(ConfigError::NoIkeProposal);
        }
        if self.esp_proposals.is_empty() {
            return Err(ConfigError::NoEspProposal);
        }
        if self.ike_lifetime.soft >= self.ike_lifetime.hard
            || self.child_lifetime.soft >= self.child_lifetime.hard
        {
            return Err(ConfigError::Lifetime);
        }
        if self.retransmit_timeout.is_zero() || self.retransmit_tries == 0 {
            return Err(ConfigError::Retransmission);
        }
        if self.max_datagram.is_some_and(|m| {
            crate::fragment::SkfFraming::for_aead(self.local_addr.is_ipv6(), true)
                .max_chunk_len(m)
                .is_err()
        }) {
            return Err(ConfigError::MaxDatagram);
        }
        self.authenticator
            .check_own_identity(&self.own_identity())
            .map_err(ConfigError::Identity)
    }
}
