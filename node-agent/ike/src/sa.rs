//! The state of one IKE SA and its CHILD_SAs (RFC 7296 sections 1 and 2): the handshake
//! states as types, the message-ID window, the outstanding request and the queue behind it.

use core::net::{IpAddr, SocketAddr};
use std::collections::VecDeque;
use std::time::Instant;

use crate::auth::AuthenticatedPeer;
use crate::config::Mode;
use crate::crypto::dh::{Group, KeyPair};
use crate::crypto::keys::IkeKeys;
use crate::crypto::sk::SkKey;
use crate::event::DownReason;
use crate::fragment::Reassembly;
use crate::nat::NatState;
use crate::proposal::IkeChoice;
use crate::timer::TimerTable;
use crate::ts::Selector;

/// Where the IKE SA's handshake stands.
#[derive(Debug)]
pub(crate) enum State {
    /// Initiator: IKE_SA_INIT sent, response awaited.
    InitSent(Box<InitSent>),
    /// Responder: IKE_SA_INIT answered, IKE_AUTH awaited (half-open).
    AuthWait,
    /// Initiator: IKE_AUTH sent, response awaited.
    AuthSent(Box<AuthSent>),
    /// Both sides authenticated.
    Established,
}

/// What an initiator keeps between its IKE_SA_INIT request and the response.
#[derive(Debug)]
pub(crate) struct InitSent {
    /// Our Diffie-Hellman key for this attempt.
    pub dh: KeyPair,
    /// A cookie the responder asked us to send back (section 2.6).
    pub cookie: Option<Vec<u8>>,
    /// Cookie challenges answered so far.
    pub cookie_tries: u8,
    /// INVALID_KE_PAYLOAD retries so far.
    pub ke_tries: u8,
}

/// What an initiator keeps between its IKE_AUTH request and the response.
#[derive(Debug)]
pub(crate) struct AuthSent {
    /// Our inbound SPI of the first CHILD_SA.
    pub child_spi: u32,
    /// The selectors we proposed.
    pub ts_i: Vec<Selector>,
    /// The selectors we proposed for the peer.
    pub ts_r: Vec<Selector>,
    /// Whether we asked for transport mode.
    pub transport: bool,
}

/// A CHILD_SA (ESP, RFC 7296 section 2.17): the SPIs and parameters, not the keys (those go
/// to the dataplane in the event).
#[derive(Debug)]
pub(crate) struct ChildSa {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub mode: Mode,
    pub ts_local: Vec<Selector>,
    pub ts_remote: Vec<Selector>,
    /// Soft lifetime.
    pub rekey_at: Option<Instant>,
    /// Hard lifetime.
    pub expire_at: Option<Instant>,
    /// The end of the make-before-break overlap of a rekeyed SA (rekey initiator only).
    pub delete_at: Option<Instant>,
    /// A rekey of it is in flight.
    pub rekeying: bool,
    /// A successor exists.
    pub superseded: bool,
    /// Our DELETE for it is queued or in flight.
    pub deleting: bool,
    /// The inbound SPI of the CHILD_SA it rekeys.
    pub replaces: Option<u32>,
    /// We initiated the exchange that created it.
    pub initiated: bool,
    /// The lowest nonce of the CREATE_CHILD_SA exchange that created it (RFC 7296 section
    /// 2.8.1); empty for the CHILD_SA of IKE_AUTH, which no rekey collision involves.
    pub nonce: Vec<u8>,
    /// A simultaneous rekey of the same CHILD_SA made a better successor: this one goes,
    /// deleted by its initiator (section 2.8.1).
    pub redundant: bool,
    /// The Diffie-Hellman group for its rekey's PFS when the peer asked for another than our
    /// first (INVALID_KE_PAYLOAD, sections 1.3 and 2.7); `None` = the configured one.
    pub pfs_group: Option<Group>,
}

impl ChildSa {
    /// Why it goes down when taken down for `reason`: a rekeyed or redundant pair says so.
    pub(crate) fn down_reason(&self, reason: DownReason) -> DownReason {
        if self.redundant {
            DownReason::Redundant
        } else if self.superseded {
            DownReason::Rekeyed
        } else {
            reason
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.rekey_at, self.expire_at, self.delete_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A request waiting for the window (RFC 7296 section 2.3: one outstanding request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// Rekey the CHILD_SA with this inbound SPI.
    RekeyChild(u32),
    /// Rekey the IKE SA.
    RekeyIke,
    /// Delete the CHILD_SAs with these inbound SPIs.
    DeleteChild(Vec<u32>),
    /// Delete the IKE SA.
    DeleteIke(DownReason),
    /// Liveness check.
    Dpd,
}

/// What the outstanding request was for, with the state its response needs.
#[derive(Debug)]
pub(crate) enum Task {
    Init,
    Auth,
    RekeyChild {
        old_inbound: u32,
        new_spi: u32,
        ni: Vec<u8>,
        dh: Option<KeyPair>,
        transport: bool,
        ts_i: Vec<Selector>,
        ts_r: Vec<Selector>,
    },
    RekeyIke {
        new_spi: u64,
        ni: Vec<u8>,
        dh: KeyPair,
    },
    DeleteChild(Vec<u32>),
    DeleteIke(DownReason),
    Dpd,
}

/// The outstanding request.
#[derive(Debug)]
pub(crate) struct Pending {
    pub message_id: u32,
    /// The IKE message, or its SKF fragments (RFC 7383), without the non-ESP marker: all of
    /// them are sent again on retransmission.
    pub messages: Vec<Vec<u8>>,
    /// Transmissions so far.
    pub sent: u32,
    pub task: Task,
}

/// The fragments received so far of one message (RFC 7383 section 2.6).
#[derive(Debug)]
pub(crate) struct Incoming {
    /// Its message ID.
    pub message_id: u32,
    /// A response to our request (otherwise a request of the peer).
    pub response: bool,
    pub fragments: Reassembly,
    /// When it is dropped if still incomplete.
    pub expires: Instant,
}

/// One IKE SA.
#[derive(Debug)]
pub(crate) struct IkeSa {
    pub spi_i: u64,
    pub spi_r: u64,
    /// We are the original initiator (we set the I flag).
    pub initiator: bool,
    /// The peer's underlay address, as the engine knows the peer.
    pub peer: IpAddr,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub choice: Option<IkeChoice>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub keys: Option<IkeKeys>,
    /// Protects what we send.
    pub tx: Option<SkKey>,
    /// Opens what we receive.
    pub rx: Option<SkKey>,
    /// The IKE_SA_INIT request and response as sent, for AUTH (section 2.15).
    pub init_request: Vec<u8>,
    pub init_response: Vec<u8>,
    /// IKE on UDP 4500 with the non-ESP marker.
    pub encap: bool,
    pub nat: NatState,
    /// The peer as it authenticated in IKE_AUTH.
    pub peer_id: Option<AuthenticatedPeer>,
    /// The message ID of our next request.
    pub next_request: u32,
    /// The message ID of the peer's next request.
    pub expect_request: u32,
    /// Our last response: its message ID and message (or fragments), replayed for a
    /// retransmitted request.
    pub last_response: Option<(u32, Vec<Vec<u8>>)>,
    /// Both sides announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 section 2.3).
    pub fragmentation: bool,
    /// Fragmented messages being reassembled: at most one request and one response.
    pub incoming: Vec<Incoming>,
    pub pending: Option<Pending>,
    pub queue: VecDeque<Request>,
    pub children: Vec<ChildSa>,
    pub last_heard: Instant,
    pub timers: TimerTable,
    /// The deadline under which the engine has this SA in its wakeup set.
    pub scheduled: Option<Instant>,
    /// Counted among the half-open SAs.
    pub half_open: bool,
    /// A rekeyed successor exists; this one only waits for its DELETE.
    pub rekeyed: bool,
    /// Our DELETE of the IKE SA is queued or in flight.
    pub deleting: bool,
    /// Our SPIs of the SAs rekeying this one (two after a simultaneous rekey, section 2.8.2).
    pub successors: Vec<u64>,
    /// The CHILD_SAs have moved to the surviving successor.
    pub settled: bool,
    /// A simultaneous rekey made a better successor of the same SA; this one goes (section
    /// 2.8.2).
    pub redundant: bool,
    /// Send INITIAL_CONTACT in our IKE_AUTH: no other IKE SA with the peer is up (section
    /// 3.10.1).
    pub initial_contact: bool,
    /// When it was created.
    pub created: Instant,
    /// When it became established.
    pub established_at: Option<Instant>,
}

impl IkeSa {
    /// A fresh SA in `state`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        spi_i: u64,
        spi_r: u64,
        initiator: bool,
        peer: IpAddr,
        local: SocketAddr,
        remote: SocketAddr,
        state: State,
        now: Instant,
    ) -> Self {
        IkeSa {
            spi_i,
            spi_r,
            initiator,
            peer,
            local,
            remote,
            state,
            choice: None,
            ni: Vec::new(),
            nr: Vec::new(),
            keys: None,
            tx: None,
            rx: None,
            init_request: Vec::new(),
            init_response: Vec::new(),
            encap: false,
            nat: NatState::default(),
            peer_id: None,
            next_request: 0,
            expect_request: 0,
            last_response: None,
            fragmentation: false,
            incoming: Vec::new(),
            pending: None,
            queue: VecDeque::new(),
            children: Vec::new(),
            last_heard: now,
            timers: TimerTable::default(),
            scheduled: None,
            half_open: false,
            rekeyed: false,
            deleting: false,
            successors: Vec::new(),
            settled: false,
            redundant: false,
            initial_contact: false,
            created: now,
            established_at: None,
        }
    }

    /// Our SPI: the key of the engine's table.
    pub(crate) fn local_spi(&self) -> u64 {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    pub(crate) fn established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    /// The earliest deadline of the SA and its CHILD_SAs.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.children
            .iter()
            .filter_map(ChildSa::next_deadline)
            .chain(self.timers.next())
            .min()
    }

    /// The lowest nonce of its creating exchange (RFC 7296 section 2.8.1).
    pub(crate) fn lowest_nonce(&self) -> &[u8] {
        lowest(&self.ni, &self.nr)
    }

    /// Our own IKE SA rekey is in flight.
    pub(crate) fn rekeying_ike(&self) -> bool {
        matches!(
            self.pending,
            Some(Pending {
                task: Task::RekeyIke { .. },
                ..
            })
        )
    }
}

/// The lower of an exchange's two nonces: what the collision rules compare (RFC 7296 section
/// 2.8.1).
pub(crate) fn lowest<'a>(ni: &'a [u8], nr: &'a [u8]) -> &'a [u8] {
    ni.min(nr)
}
