//! The `DmvpnNode` status a gateway agent writes: built from the router's snapshot (RFC 2332
//! NHRP peers and registrations, RFC 7296 IKE SAs, RFC 4303 ESP SAs), with the standard
//! `Ready` and `Degraded` conditions, and written at most every [`MIN_WRITE_INTERVAL`] and
//! only when it changed ([`StatusWriter`]). Pure: the gateway loop sends the patches.

use core::time::Duration;
use std::time::Instant;

use dmvpn_crds::{
    DmvpnNodeStatus, IpsecStatus, NhrpStatus, NhsStatus, PeerState, PeerStatus, PeerType,
};
use dmvpn_nhrp::{EntryType, Role};
use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::show::LinkState;
use crate::snapshot::{IkeSaState, RouterSnapshot};

/// The least time between two status writes (the contract's "at most every 5 s").
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(5);
/// The longest the status goes unwritten while only peers' uptimes change.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// The first wait after a failed write; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts of a failing write.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The condition type that says the router runs the spec.
pub const READY: &str = "Ready";
/// The condition type that says something is wrong but the router may run.
pub const DEGRADED: &str = "Degraded";

/// What the gateway knows besides the router's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The router runs the spec of this generation.
    Running,
    /// The router cannot run the spec: `reason` (CamelCase, such as `SecretMissing` or
    /// `InvalidSpec`) and a message that tells the fix and never holds a secret.
    Failed {
        /// The condition reason.
        reason: &'static str,
        /// The condition message.
        message: String,
    },
}

/// A condition of `type_` at `now`.
fn condition(
    type_: &str,
    on: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if on { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// The status of a router from its snapshot (`None` when it is not running), for the spec
/// of `generation`, at wall-clock time `now`.
pub fn status_of(
    snapshot: Option<&RouterSnapshot>,
    health: &Health,
    generation: Option<i64>,
    now: &Time,
) -> DmvpnNodeStatus {
    let mut status = DmvpnNodeStatus {
        observed_generation: generation,
        updated_at: Some(now.clone()),
        ..DmvpnNodeStatus::default()
    };
    let (ready, degraded) = match (health, snapshot) {
        (Health::Failed { reason, message }, _) => (
            condition(READY, false, reason, message.clone(), generation, now),
            condition(DEGRADED, true, reason, message.clone(), generation, now),
        ),
        (Health::Running, None) => (
            condition(
                READY,
                false,
                "Starting",
                "the router is starting".into(),
                generation,
                now,
            ),
            condition(
                DEGRADED,
                false,
                "Starting",
                "the router is starting".into(),
                generation,
                now,
            ),
        ),
        (Health::Running, Some(s)) => {
            fill(&mut status, s);
            router_conditions(&status, s, generation, now)
        }
    };
    status.conditions = vec![ready, degraded];
    status
}

/// `Ready`: a hub runs; a spoke is registered with at least one NHS. `Degraded`: some NHS
/// or peer is not up.
fn router_conditions(
    status: &DmvpnNodeStatus,
    s: &RouterSnapshot,
    generation: Option<i64>,
    now: &Time,
) -> (Condition, Condition) {
    let nhs_up = s.nhs.iter().filter(|n| n.up).count();
    let ready = match s.role {
        Role::Hub => condition(
            READY,
            true,
            "Running",
            "the hub runs".into(),
            generation,
            now,
        ),
        Role::Spoke if nhs_up > 0 => condition(
            READY,
            true,
            "Registered",
            format!("registered with {nhs_up} of {} NHS", s.nhs.len()),
            generation,
            now,
        ),
        Role::Spoke => condition(
            READY,
            false,
            "NotRegistered",
            format!(
                "registered with none of {} NHS: check the hubs' NBMA addresses, the PSK and the NHRP network id",
                s.nhs.len()
            ),
            generation,
            now,
        ),
    };
    let nhs_down: Vec<String> = s
        .nhs
        .iter()
        .filter(|n| !n.up)
        .map(|n| n.tunnel.to_string())
        .collect();
    let peers_down: Vec<String> = status
        .peers
        .iter()
        .filter(|p| p.state != PeerState::Up)
        .map(|p| p.tunnel_address.to_string())
        .collect();
    let degraded = if !nhs_down.is_empty() {
        condition(
            DEGRADED,
            true,
            "NhsDown",
            format!("not registered with NHS {}", nhs_down.join(", ")),
            generation,
            now,
        )
    } else if !peers_down.is_empty() {
        condition(
            DEGRADED,
            true,
            "PeerDown",
            format!("peers not up: {}", peers_down.join(", ")),
            generation,
            now,
        )
    } else {
        condition(
            DEGRADED,
            false,
            "AllPeersUp",
            "every NHS and peer is up".into(),
            generation,
            now,
        )
    };
    (ready, degraded)
}

/// Peers, NHRP and IPsec summaries and remote prefixes from a snapshot.
fn fill(status: &mut DmvpnNodeStatus, s: &RouterSnapshot) {
    status.peers = crate::show::dmvpn_json(s)
        .peers
        .into_iter()
        .map(|p| PeerStatus {
            tunnel_address: p.tunnel_address,
            nbma_address: p.nbma_address,
            state: match p.state {
                LinkState::Up => PeerState::Up,
                LinkState::Ike => PeerState::Ike,
                LinkState::Nhrp => PeerState::Nhrp,
                LinkState::Down => PeerState::Down,
            },
            kind: match p.kind {
                "static" => PeerType::Static,
                "dynamic" => PeerType::Dynamic,
                _ => PeerType::Shortcut,
            },
            uptime_seconds: p.uptime_seconds,
            entries: u32::try_from(p.entries).unwrap_or(u32::MAX),
            nat: p.nat,
        })
        .collect();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let registered = match s.role {
        Role::Hub => s
            .dmvpn
            .peers
            .iter()
            .filter(|p| p.kind == EntryType::Registered)
            .count(),
        Role::Spoke => s.nhs.iter().filter(|n| n.up).count(),
    };
    status.nhrp = Some(NhrpStatus {
        entries: count(s.nhrp.len()),
        registered_peers: count(registered),
        shortcuts: count(
            s.nhrp
                .iter()
                .filter(|e| e.kind == EntryType::Shortcut)
                .count(),
        ),
        servers: s
            .nhs
            .iter()
            .map(|n| NhsStatus {
                tunnel_address: n.tunnel,
                state: if n.up { "registered" } else { "pending" }.to_owned(),
            })
            .collect(),
    });
    if !s.insecure {
        status.ipsec = Some(IpsecStatus {
            ike_sas: count(
                s.ike_sas
                    .iter()
                    .filter(|sa| sa.state != IkeSaState::Connecting)
                    .count(),
            ),
            child_sas: count(s.ipsec_sas.len()),
        });
    }
    status.remote_prefixes = s
        .routes
        .iter()
        .filter_map(|p| IpNet::new(p.addr(), p.prefix_len()).ok())
        .collect();
}

/// What [`StatusWriter::due`] compares: the status without its timestamps and uptimes.
fn content(status: &DmvpnNodeStatus) -> DmvpnNodeStatus {
    let mut c = status.clone();
    c.updated_at = None;
    for p in &mut c.peers {
        p.uptime_seconds = 0;
    }
    for cond in &mut c.conditions {
        cond.last_transition_time = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    }
    c
}

/// When the status is written: at most every [`MIN_WRITE_INTERVAL`], when it changed
/// (uptimes aside) or [`REFRESH_INTERVAL`] passed, and after a failure only once its
/// backoff passed. Conditions keep their `lastTransitionTime` while their status stays.
#[derive(Debug, Default)]
pub struct StatusWriter {
    /// The last status written.
    written: Option<DmvpnNodeStatus>,
    /// When it was written.
    written_at: Option<Instant>,
    /// The wait after the last failure, and the earliest next attempt.
    backoff: Option<(Duration, Instant)>,
}

impl StatusWriter {
    /// A writer that has written nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The status to write at `now`, if one is due: `status` with the transition times of
    /// unchanged conditions carried over.
    pub fn due(&self, mut status: DmvpnNodeStatus, now: Instant) -> Option<DmvpnNodeStatus> {
        if let Some((_, at)) = self.backoff
            && now < at
        {
            return None;
        }
        if let Some(old) = &self.written {
            for c in &mut status.conditions {
                if let Some(o) = old
                    .conditions
                    .iter()
                    .find(|o| o.type_ == c.type_ && o.status == c.status)
                {
                    c.last_transition_time = o.last_transition_time.clone();
                }
            }
        }
        let (Some(old), Some(at)) = (&self.written, self.written_at) else {
            return Some(status);
        };
        let since = now.saturating_duration_since(at);
        if since < MIN_WRITE_INTERVAL {
            return None;
        }
        (content(old) != content(&status) || since >= REFRESH_INTERVAL).then_some(status)
    }

    /// Records a successful write of `status` at `now`.
    pub fn written(&mut self, status: DmvpnNodeStatus, now: Instant) {
        self.written = Some(status);
        self.written_at = Some(now);
        self.backoff = None;
    }

    /// Records a failed write at `now`; returns the wait before the next attempt.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let wait = match self.backoff {
            None => FIRST_BACKOFF,
            Some((last, _)) => (last * 2).min(MAX_BACKOFF),
        };
        self.backoff = Some((wait, now + wait));
        wait
    }

    /// Forgets what was written (the DmvpnNode was recreated).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::show::testdata;

    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn a_registered_spoke_is_ready_and_reports_peers_nhrp_and_ipsec() {
        let mut s = testdata::spoke();
        s.routes = vec![
            dmvpn_nhrp::Prefix::new("192.168.0.0".parse().unwrap(), 16).unwrap(),
            dmvpn_nhrp::Prefix::new("192.168.3.0".parse().unwrap(), 24).unwrap(),
        ];
        let st = status_of(Some(&s), &Health::Running, Some(3), &t(100));
        assert_eq!(st.observed_generation, Some(3));
        assert_eq!(st.conditions[0].type_, "Ready");
        assert_eq!(st.conditions[0].status, "True");
        assert_eq!(st.conditions[0].reason, "Registered");
        assert_eq!(st.conditions[0].observed_generation, Some(3));
        assert_eq!(st.peers.len(), 2);
        assert_eq!(st.peers[0].kind, PeerType::Static);
        assert_eq!(st.peers[1].kind, PeerType::Shortcut);
        let nhrp = st.nhrp.as_ref().unwrap();
        assert_eq!(nhrp.registered_peers, 1);
        assert_eq!(nhrp.shortcuts, 2);
        assert_eq!(nhrp.servers[0].state, "registered");
        assert!(st.ipsec.is_some());
        assert_eq!(
            st.remote_prefixes,
            vec![
                "192.168.0.0/16".parse::<IpNet>().unwrap(),
                "192.168.3.0/24".parse().unwrap()
            ]
        );
        assert_eq!(st.updated_at, Some(t(100)));
    }

    #[test]
    fn an_unregistered_spoke_is_not_ready_and_degraded() {
        let mut s = testdata::spoke();
        s.nhs[0].up = false;
        let st = status_of(Some(&s), &Health::Running, Some(1), &t(0));
        assert_eq!(
            (
                st.conditions[0].status.as_str(),
                st.conditions[0].reason.as_str()
            ),
            ("False", "NotRegistered")
        );
        assert_eq!(
            (
                st.conditions[1].status.as_str(),
                st.conditions[1].reason.as_str()
            ),
            ("True", "NhsDown")
        );
        assert!(st.conditions[1].message.contains("10.1.1.1"));
    }

    #[test]
    fn a_hub_counts_its_registered_spokes() {
        let st = status_of(Some(&testdata::hub()), &Health::Running, None, &t(0));
        assert_eq!(st.nhrp.unwrap().registered_peers, 3);
        assert_eq!(st.conditions[0].reason, "Running");
    }

    #[test]
    fn a_failure_sets_both_conditions_with_its_reason() {
        let health = Health::Failed {
            reason: "SecretMissing",
            message: "Secret kube-dmvpn/psk not found".into(),
        };
        let st = status_of(None, &health, Some(2), &t(0));
        assert_eq!(st.conditions[0].status, "False");
        assert_eq!(st.conditions[1].status, "True");
        assert_eq!(st.conditions[1].reason, "SecretMissing");
        assert!(st.peers.is_empty() && st.nhrp.is_none());
    }

    #[test]
    fn writes_are_rate_limited_and_only_on_change() {
        let s = testdata::spoke();
        let at = Instant::now();
        let mut w = StatusWriter::new();
        let first = w
            .due(status_of(Some(&s), &Health::Running, Some(1), &t(0)), at)
            .expect("the first status is due");
        w.written(first, at);
        // The same content later: not due; uptimes alone change nothing.
        let mut later = s.clone();
        later.dmvpn.peers[0].up_down += Duration::from_secs(30);
        let same = status_of(Some(&later), &Health::Running, Some(1), &t(30));
        assert!(w.due(same.clone(), at + Duration::from_secs(30)).is_none());
        // ... until the refresh interval passed.
        assert!(w.due(same, at + REFRESH_INTERVAL).is_some());
        // A change within 5 s waits; after, it is due and keeps the Ready transition time.
        let mut down = s.clone();
        down.nhs[0].up = false;
        let changed = status_of(Some(&down), &Health::Running, Some(1), &t(2));
        assert!(
            w.due(changed.clone(), at + Duration::from_secs(2))
                .is_none()
        );
        let due = w.due(changed, at + MIN_WRITE_INTERVAL).unwrap();
        assert_eq!(due.conditions[0].last_transition_time, t(2));
        let next_generation = status_of(Some(&s), &Health::Running, Some(2), &t(9));
        let due = w.due(next_generation, at + MIN_WRITE_INTERVAL).unwrap();
        assert_eq!(
            due.conditions[0].last_transition_time,
            t(0),
            "Ready stayed True since the first write"
        );
    }

    #[test]
    fn failed_writes_back_off_exponentially() {
        let at = Instant::now();
        let mut w = StatusWriter::new();
        assert_eq!(w.failed(at), Duration::from_secs(1));
        let st = status_of(None, &Health::Running, None, &t(0));
        assert!(w.due(st.clone(), at).is_none());
        assert!(w.due(st.clone(), at + Duration::from_secs(1)).is_some());
        assert_eq!(w.failed(at), Duration::from_secs(2));
        assert_eq!(w.failed(at), Duration::from_secs(4));
        for _ in 0..10 {
            w.failed(at);
        }
        assert_eq!(w.failed(at), MAX_BACKOFF);
        w.written(st, at);
        assert!(w.backoff.is_none());
    }
}
