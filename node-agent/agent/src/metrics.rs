//! Prometheus metrics at `/metrics` (config `metrics.listen`), read from the latest
//! [`RouterSnapshot`] at scrape time.
//!
//! The engines keep absolute counters, so a custom [`Collector`] sets every counter from the
//! snapshot when Prometheus scrapes (families are rebuilt, so a peer that left takes its
//! series with it). The one event metric, the IKE handshake duration histogram
//! ([`handshake_histogram`]), is fed by the key exchange as SAs come up.
//!
//! Names are `dmvpn_*`, counters end in `_total`, units are base units (`_bytes`,
//! `_seconds`). Labels carry addresses, states and reasons, never a secret: the snapshot
//! holds none.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmvpn_nhrp::EntryType;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::show::{LinkState, link_state};
use crate::snapshot::RouterSnapshot;

/// Buckets of the IKE handshake duration (first IKE_SA_INIT to the first CHILD_SA, RFC 7296
/// section 1.2): 1 ms to 10 s.
pub const HANDSHAKE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics of one agent: a registry holding the snapshot collector and the handshake
/// histogram.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    handshake: Histogram,
}

/// The IKE handshake duration histogram, `dmvpn_ike_handshake_duration_seconds`: the key
/// exchange observes it ([`crate::ipsec::IkeKeys::with_handshake_histogram`]) and
/// [`Metrics::new`] serves it.
///
/// # Errors
/// Never with these constant options (a bug caught by the tests).
pub fn handshake_histogram() -> prometheus::Result<Histogram> {
    Histogram::with_opts(
        HistogramOpts::new(
            "dmvpn_ike_handshake_duration_seconds",
            "Time from the first IKE_SA_INIT request sent or received to the first CHILD_SA up (RFC 7296 sections 1.2 and 2.17).",
        )
        .buckets(HANDSHAKE_BUCKETS.to_vec()),
    )
}

impl Metrics {
    /// A registry reading `snapshot` at every scrape and serving `handshake` (from
    /// [`handshake_histogram`]).
    ///
    /// # Errors
    /// Only if two metrics were given one name (a bug caught by the tests).
    pub fn new(
        snapshot: watch::Receiver<Arc<RouterSnapshot>>,
        handshake: Histogram,
    ) -> prometheus::Result<Self> {
        let registry = Registry::new();
        registry.register(Box::new(SnapshotCollector::new(snapshot)?))?;
        registry.register(Box::new(handshake.clone()))?;
        Ok(Metrics {
            registry,
            handshake,
        })
    }

    /// Records one completed IKE handshake.
    pub fn observe_handshake(&self, took: Duration) {
        self.handshake.observe(took.as_secs_f64());
    }

    /// The text exposition format (version 0.0.4) of every metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on families the collector never builds (no
        // metrics, or mismatched types).
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The families set from a snapshot at scrape time.
#[derive(Debug)]
struct Families {
    peer_packets: IntCounterVec,
    peer_bytes: IntCounterVec,
    esp_packets: IntCounterVec,
    esp_replay_drops: IntCounterVec,
    esp_auth_failures: IntCounterVec,
    drops: IntCounterVec,
    os_drops: IntCounterVec,
    tun_packets: IntCounterVec,
    underlay_datagrams: IntCounterVec,
    forwarded: IntCounter,
    multicast_copies: IntCounter,
    mss_clamped: IntCounter,
    icmp_sent: IntCounter,
    icmp_suppressed: IntCounter,
    queued: IntCounter,
    nhrp_messages: IntCounterVec,
    nhrp_drops: IntCounterVec,
    nhrp_refused: IntCounter,
    redirects_sent: IntCounter,
    redirects_suppressed: IntCounter,
    nhs_up: IntGaugeVec,
    shortcuts: IntGauge,
    cache_entries: IntGaugeVec,
    peers: IntGaugeVec,
    ike_sas: IntGaugeVec,
    ike_failures: IntCounterVec,
}

fn counter(name: &str, help: &str) -> prometheus::Result<IntCounter> {
    IntCounter::with_opts(Opts::new(name, help))
}

fn counters(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

fn gauges(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

impl Families {
    fn new() -> prometheus::Result<Self> {
        Ok(Families {
            peer_packets: counters(
                "dmvpn_peer_packets_total",
                "Underlay datagrams exchanged with a peer (ESP-in-UDP, RFC 3948, or GRE-in-UDP without IPsec), by peer NBMA address and direction.",
                &["peer", "direction"],
            )?,
            peer_bytes: counters(
                "dmvpn_peer_bytes_total",
                "UDP payload bytes exchanged with a peer, by peer NBMA address and direction.",
                &["peer", "direction"],
            )?,
            esp_packets: counters(
                "dmvpn_esp_packets_total",
                "Packets sealed (tx, #pkts encaps) and opened (rx, #pkts decaps) by the current ESP SAs of a peer (RFC 4303).",
                &["peer", "direction"],
            )?,
            esp_replay_drops: counters(
                "dmvpn_esp_replay_drops_total",
                "ESP packets refused by anti-replay on the current inbound SAs of a peer (RFC 4303 section 3.4.3).",
                &["peer"],
            )?,
            esp_auth_failures: counters(
                "dmvpn_esp_auth_failures_total",
                "ESP packets whose ICV failed on the current inbound SAs of a peer (RFC 4303 section 3.4.4).",
                &["peer"],
            )?,
            drops: counters(
                "dmvpn_dataplane_drops_total",
                "Packets the dataplane dropped, by reason.",
                &["reason"],
            )?,
            os_drops: counters(
                "dmvpn_os_drops_total",
                "Packets the TUN device or the underlay socket took in but could not hand to the dataplane, by reason.",
                &["reason"],
            )?,
            tun_packets: counters(
                "dmvpn_tun_packets_total",
                "IP packets read from (rx) and written to (tx) the tunnel device.",
                &["direction"],
            )?,
            underlay_datagrams: counters(
                "dmvpn_underlay_datagrams_total",
                "Datagrams received (rx) and sent (tx) on the underlay.",
                &["direction"],
            )?,
            forwarded: counter(
                "dmvpn_forwarded_packets_total",
                "Packets a hub forwarded from one peer to another (hairpin).",
            )?,
            multicast_copies: counter(
                "dmvpn_multicast_copies_total",
                "Copies sent by multicast and broadcast replication.",
            )?,
            mss_clamped: counter(
                "dmvpn_mss_clamped_total",
                "TCP SYNs whose MSS option was lowered.",
            )?,
            icmp_sent: counter(
                "dmvpn_icmp_errors_sent_total",
                "ICMP fragmentation-needed and ICMPv6 packet-too-big messages sent (RFC 1191, RFC 8201).",
            )?,
            icmp_suppressed: counter(
                "dmvpn_icmp_errors_suppressed_total",
                "ICMP errors not sent because of the rate limit or RFC 1812 section 4.3.2.7.",
            )?,
            queued: counter(
                "dmvpn_sa_queued_packets_total",
                "Packets queued while an SA was negotiated.",
            )?,
            nhrp_messages: counters(
                "dmvpn_nhrp_messages_total",
                "NHRP messages sent and received, by type (RFC 2332 section 5.2).",
                &["type", "direction"],
            )?,
            nhrp_drops: counters(
                "dmvpn_nhrp_drops_total",
                "NHRP packets dropped, by reason.",
                &["reason"],
            )?,
            nhrp_refused: counter(
                "dmvpn_nhrp_registrations_refused_total",
                "Registration CIEs refused with a non-zero code (RFC 2332 section 5.2.4).",
            )?,
            redirects_sent: counter(
                "dmvpn_nhrp_redirects_sent_total",
                "NHRP Traffic Indications (redirects, DMVPN phase 3) sent.",
            )?,
            redirects_suppressed: counter(
                "dmvpn_nhrp_redirects_suppressed_total",
                "NHRP Traffic Indications not sent because of the per-pair rate limit.",
            )?,
            nhs_up: gauges(
                "dmvpn_nhrp_nhs_up",
                "1 while the registration with a Next Hop Server is accepted, else 0.",
                &["nhs", "nbma"],
            )?,
            shortcuts: IntGauge::with_opts(Opts::new(
                "dmvpn_nhrp_shortcuts",
                "NHRP cache entries learned from resolution replies (spoke-to-spoke shortcuts).",
            ))?,
            cache_entries: gauges(
                "dmvpn_nhrp_cache_entries",
                "NHRP cache entries, by type.",
                &["type"],
            )?,
            peers: gauges("dmvpn_peers", "Peers of show dmvpn, by state.", &["state"])?,
            ike_sas: gauges("dmvpn_ike_sas", "IKE SAs, by state (RFC 7296).", &["state"])?,
            ike_failures: counters(
                "dmvpn_ike_sa_failures_total",
                "IKE SA setups that failed (RFC 7296), by reason (authentication: a wrong pre-shared key or certificate).",
                &["reason"],
            )?,
        })
    }

    fn collectors(&self) -> [&dyn Collector; 26] {
        [
            &self.peer_packets,
            &self.peer_bytes,
            &self.esp_packets,
            &self.esp_replay_drops,
            &self.esp_auth_failures,
            &self.drops,
            &self.os_drops,
            &self.tun_packets,
            &self.underlay_datagrams,
            &self.forwarded,
            &self.multicast_copies,
            &self.mss_clamped,
            &self.icmp_sent,
            &self.icmp_suppressed,
            &self.queued,
            &self.nhrp_messages,
            &self.nhrp_drops,
            &self.nhrp_refused,
            &self.redirects_sent,
            &self.redirects_suppressed,
            &self.nhs_up,
            &self.shortcuts,
            &self.cache_entries,
            &self.peers,
            &self.ike_sas,
            &self.ike_failures,
        ]
    }

    /// Sets every family from `s`, dropping the series of the previous scrape.
    fn fill(&self, s: &RouterSnapshot) {
        fn set(c: &IntCounter, v: u64) {
            c.reset();
            c.inc_by(v);
        }
        fn set_vec(c: &IntCounterVec, labels: &[&str], v: u64) {
            c.with_label_values(labels).inc_by(v);
        }
        for f in [
            &self.peer_packets,
            &self.peer_bytes,
            &self.esp_packets,
            &self.esp_replay_drops,
            &self.esp_auth_failures,
            &self.drops,
            &self.os_drops,
            &self.tun_packets,
            &self.underlay_datagrams,
            &self.nhrp_messages,
            &self.nhrp_drops,
            &self.ike_failures,
        ] {
            f.reset();
        }
        for f in [
            &self.nhs_up,
            &self.cache_entries,
            &self.peers,
            &self.ike_sas,
        ] {
            f.reset();
        }

        for p in &s.peers {
            let peer = p.nbma.to_string();
            let c = p.counters;
            set_vec(&self.peer_packets, &[&peer, "tx"], c.tx_packets);
            set_vec(&self.peer_packets, &[&peer, "rx"], c.rx_packets);
            set_vec(&self.peer_bytes, &[&peer, "tx"], c.tx_bytes);
            set_vec(&self.peer_bytes, &[&peer, "rx"], c.rx_bytes);
        }
        for sa in &s.ipsec_sas {
            let peer = sa.peer.to_string();
            set_vec(&self.esp_packets, &[&peer, "tx"], sa.packets_encaps);
            set_vec(&self.esp_packets, &[&peer, "rx"], sa.packets_decaps);
            set_vec(&self.esp_replay_drops, &[&peer], sa.replay_drops);
            set_vec(&self.esp_auth_failures, &[&peer], sa.auth_failures);
        }

        let d = &s.dataplane;
        for r in dmvpn_dataplane::DropReason::ALL {
            set_vec(&self.drops, &[r.metric_label()], d.dropped(r));
        }
        for (reason, n) in s.os_drops.by_reason() {
            set_vec(&self.os_drops, &[reason], n);
        }
        set_vec(&self.tun_packets, &["rx"], d.tun_rx);
        set_vec(&self.tun_packets, &["tx"], d.tun_tx);
        set_vec(&self.underlay_datagrams, &["rx"], d.udp_rx);
        set_vec(&self.underlay_datagrams, &["tx"], d.udp_tx);
        set(&self.forwarded, d.forwarded);
        set(&self.multicast_copies, d.multicast_copies);
        set(&self.mss_clamped, d.mss_clamped);
        set(&self.icmp_sent, d.icmp_sent);
        set(&self.icmp_suppressed, d.icmp_suppressed);
        set(&self.queued, d.queued);

        let n = &s.nhrp_traffic;
        for op in crate::show::nhrp_operations() {
            let label = crate::show::nhrp_operation_label(op);
            set_vec(&self.nhrp_messages, &[label, "sent"], n.sent.get(op));
            set_vec(
                &self.nhrp_messages,
                &[label, "received"],
                n.received.get(op),
            );
        }
        for r in dmvpn_nhrp::DropReason::ALL {
            set_vec(&self.nhrp_drops, &[r.label()], n.dropped(r));
        }
        set(&self.nhrp_refused, n.registrations_refused);
        set(
            &self.redirects_sent,
            n.sent.get(dmvpn_wire::nhrp::Operation::TrafficIndication),
        );
        set(&self.redirects_suppressed, n.redirects_suppressed);

        for nhs in &s.nhs {
            self.nhs_up
                .with_label_values(&[nhs.tunnel.to_string(), nhs.nbma.to_string()])
                .set(i64::from(nhs.up));
        }
        let count = |kind: EntryType| s.nhrp.iter().filter(|e| e.kind == kind).count();
        self.shortcuts
            .set(i64::try_from(count(EntryType::Shortcut)).unwrap_or(i64::MAX));
        for kind in [
            EntryType::Static,
            EntryType::Registered,
            EntryType::Shortcut,
            EntryType::Local,
            EntryType::Incomplete,
        ] {
            self.cache_entries
                .with_label_values(&[crate::show::entry_type_label(kind)])
                .set(i64::try_from(count(kind)).unwrap_or(i64::MAX));
        }
        for state in [
            LinkState::Up,
            LinkState::Ike,
            LinkState::Nhrp,
            LinkState::Down,
        ] {
            let n = s
                .dmvpn
                .peers
                .iter()
                .filter(|p| link_state(s, p) == state)
                .count();
            self.peers
                .with_label_values(&[state.label()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for (reason, n) in &s.ike_failures {
            set_vec(&self.ike_failures, &[reason], *n);
        }
        for state in crate::show::IKE_STATES {
            let n = s.ike_sas.iter().filter(|sa| sa.state == state).count();
            self.ike_sas
                .with_label_values(&[crate::show::ike_state_label(state)])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// A [`Collector`] that sets its families from the latest snapshot at each scrape.
#[derive(Debug)]
struct SnapshotCollector {
    snapshot: watch::Receiver<Arc<RouterSnapshot>>,
    /// Scrapes at the same time would interleave their resets and sets.
    families: Mutex<Families>,
    descs: Vec<Desc>,
}

impl SnapshotCollector {
    fn new(snapshot: watch::Receiver<Arc<RouterSnapshot>>) -> prometheus::Result<Self> {
        let families = Families::new()?;
        let descs = families
            .collectors()
            .iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        Ok(SnapshotCollector {
            snapshot,
            families: Mutex::new(families),
            descs,
        })
    }
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snap = Arc::clone(&self.snapshot.borrow());
        // A poisoned lock only means a scrape panicked midway; the families are reset anyway.
        let families = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        families.fill(&snap);
        families
            .collectors()
            .iter()
            .flat_map(|c| c.collect())
            .collect()
    }
}

/// The longest HTTP request head the endpoint reads.
const MAX_REQUEST_HEAD: usize = 8192;
/// Scrapes served at once.
const MAX_SCRAPES: usize = 4;
/// A scraper that sends no complete request in this time is disconnected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The `/metrics` HTTP endpoint: a minimal HTTP/1.1 responder (one request per connection).
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    /// Binds `listen`.
    ///
    /// # Errors
    /// The address is in use or not ours.
    pub async fn bind(listen: SocketAddr) -> io::Result<Self> {
        Ok(MetricsServer {
            listener: TcpListener::bind(listen).await?,
        })
    }

    /// The bound address (the port, when `listen` asked for port 0).
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves scrapes until the task is dropped.
    ///
    /// # Errors
    /// Accepting failed for good.
    pub async fn run(self, metrics: Arc<Metrics>) -> io::Result<()> {
        let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
        loop {
            let permit = Arc::clone(&slots)
                .acquire_owned()
                .await
                .map_err(io::Error::other)?;
            let (stream, _) = match self.listener.accept().await {
                Ok(a) => a,
                Err(e) if crate::accept_error_is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let _ = scrape(stream, &metrics).await;
                drop(permit);
            });
        }
    }
}

/// The status line and body of the answer to a request head.
fn route(head: &[u8], metrics: &Metrics) -> (&'static str, String) {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(&[]);
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or(t));
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => ("200 OK", metrics.encode()),
        (Some(b"GET"), _) => ("404 Not Found", "try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "GET /metrics only\n".to_owned()),
    }
}

async fn scrape(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 || head.len() + n > MAX_REQUEST_HEAD {
                return Ok::<bool, io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(true)
    })
    .await
    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let (status, body) = if complete {
        route(&head, metrics)
    } else {
        ("400 Bad Request", "bad request\n".to_owned())
    };
    let content_type = if status.starts_with("200") {
        prometheus::TEXT_FORMAT
    } else {
        "text/plain; charset=utf-8"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::show::testdata::{hub, spoke};

    /// One parsed sample line of the text format: name, labels, value.
    type Sample = (String, BTreeMap<String, String>, f64);

    /// Parses the text exposition format: samples, and the `# TYPE` of each family.
    fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
        let mut samples = Vec::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => {
                    let labels = l
                        .trim_end_matches('}')
                        .split(',')
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap();
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (n, labels)
                }
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value.parse().unwrap()));
        }
        (samples, types)
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| *v)
    }

    fn scrape_of(snapshot: RouterSnapshot) -> (Metrics, watch::Sender<Arc<RouterSnapshot>>) {
        let (tx, rx) = watch::channel(Arc::new(snapshot));
        (
            Metrics::new(rx, handshake_histogram().unwrap()).unwrap(),
            tx,
        )
    }

    #[test]
    fn names_follow_the_conventions() {
        // A spoke has an NHS, so every family has a series.
        let (m, _tx) = scrape_of(spoke());
        let (samples, types) = parse(&m.encode());
        assert_eq!(types.len(), 26, "{types:?}");
        for (name, kind) in &types {
            assert!(name.starts_with("dmvpn_"), "{name}");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name} is a {kind}"
            );
        }
        for (name, _, _) in &samples {
            let family = name
                .strip_suffix("_bucket")
                .or(name.strip_suffix("_sum"))
                .or(name.strip_suffix("_count"))
                .filter(|f| types.contains_key(*f))
                .unwrap_or(name);
            assert!(types.contains_key(family), "{name} has no TYPE");
        }
    }

    #[test]
    fn hub_counters_come_from_the_snapshot() {
        let mut snapshot = hub();
        snapshot.os_drops.udp.truncated = 2;
        snapshot.os_drops.tun.unsplit = 1;
        let (m, _tx) = scrape_of(snapshot);
        let (s, _) = parse(&m.encode());
        let peer = "198.18.0.2";
        assert_eq!(
            value(
                &s,
                "dmvpn_peer_packets_total",
                &[("peer", peer), ("direction", "tx")]
            ),
            Some(215.0)
        );
        assert_eq!(
            value(
                &s,
                "dmvpn_peer_bytes_total",
                &[("peer", peer), ("direction", "rx")]
            ),
            Some(28_560.0)
        );
        assert_eq!(
            value(
                &s,
                "dmvpn_esp_packets_total",
                &[("peer", peer), ("direction", "rx")]
            ),
            Some(204.0)
        );
        assert_eq!(
            value(
                &s,
                "dmvpn_esp_replay_drops_total",
                &[("peer", "198.18.0.3")]
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &s,
                "dmvpn_esp_auth_failures_total",
                &[("peer", "198.18.0.3")]
            ),
            Some(1.0)
        );
        // Every dataplane drop reason is a series, zero or not.
        let reasons: BTreeSet<_> = s
            .iter()
            .filter(|(n, _, _)| n == "dmvpn_dataplane_drops_total")
            .map(|(_, l, _)| l["reason"].clone())
            .collect();
        for r in [
            "replay",
            "auth",
            "no_sa",
            "queue_full",
            "no_route",
            "malformed",
        ] {
            assert!(reasons.contains(r), "{r} missing in {reasons:?}");
        }
        assert_eq!(reasons.len(), dmvpn_dataplane::DropReason::ALL.len());
        // The OS side's drops, every reason a series.
        for (reason, want) in [
            ("udp_truncated", 2.0),
            ("tun_unsplit", 1.0),
            ("udp_oversize", 0.0),
        ] {
            assert_eq!(
                value(&s, "dmvpn_os_drops_total", &[("reason", reason)]),
                Some(want),
                "{reason}"
            );
        }
        assert_eq!(
            value(
                &s,
                "dmvpn_nhrp_messages_total",
                &[("type", "registration_request"), ("direction", "received")]
            ),
            Some(58.0)
        );
        assert_eq!(
            value(
                &s,
                "dmvpn_nhrp_messages_total",
                &[("type", "traffic_indication"), ("direction", "sent")]
            ),
            Some(4.0)
        );
        assert_eq!(value(&s, "dmvpn_nhrp_redirects_sent_total", &[]), Some(4.0));
        assert_eq!(
            value(&s, "dmvpn_nhrp_redirects_suppressed_total", &[]),
            Some(9.0)
        );
        assert_eq!(
            value(
                &s,
                "dmvpn_nhrp_drops_total",
                &[("reason", "authentication_mismatch")]
            ),
            Some(2.0)
        );
        assert_eq!(
            value(&s, "dmvpn_ike_sas", &[("state", "established")]),
            Some(2.0)
        );
        assert_eq!(
            value(&s, "dmvpn_ike_sas", &[("state", "connecting")]),
            Some(1.0)
        );
        assert_eq!(
            value(&s, "dmvpn_ike_sas", &[("state", "deleting")]),
            Some(0.0)
        );
        assert_eq!(value(&s, "dmvpn_peers", &[("state", "up")]), Some(2.0));
        assert_eq!(value(&s, "dmvpn_peers", &[("state", "ike")]), Some(1.0));
        assert_eq!(
            value(&s, "dmvpn_nhrp_cache_entries", &[("type", "dynamic")]),
            Some(4.0)
        );
    }

    #[test]
    fn spoke_reports_its_nhs_and_shortcuts_and_drops_series_of_gone_peers() {
        let (m, tx) = scrape_of(spoke());
        let (s, _) = parse(&m.encode());
        assert_eq!(
            value(
                &s,
                "dmvpn_nhrp_nhs_up",
                &[("nhs", "10.1.1.1"), ("nbma", "198.18.0.1")]
            ),
            Some(1.0)
        );
        assert_eq!(value(&s, "dmvpn_nhrp_shortcuts", &[]), Some(2.0));
        assert!(
            value(
                &s,
                "dmvpn_esp_packets_total",
                &[("peer", "198.18.0.3"), ("direction", "tx")]
            )
            .is_some()
        );
        // The shortcut to spoke 2 expires and its SA goes: so do its series.
        let mut next = spoke();
        next.nhrp.retain(|e| e.kind != EntryType::Shortcut);
        next.ipsec_sas
            .retain(|sa| sa.peer.to_string() != "198.18.0.3");
        next.nhs[0].up = false;
        tx.send(Arc::new(next)).unwrap();
        let (s, _) = parse(&m.encode());
        assert_eq!(value(&s, "dmvpn_nhrp_shortcuts", &[]), Some(0.0));
        assert_eq!(
            value(
                &s,
                "dmvpn_nhrp_nhs_up",
                &[("nhs", "10.1.1.1"), ("nbma", "198.18.0.1")]
            ),
            Some(0.0)
        );
        assert!(
            !s.iter()
                .any(|(_, l, _)| l.get("peer").is_some_and(|p| p == "198.18.0.3"))
        );
    }

    #[test]
    fn handshake_durations_fill_the_histogram() {
        let (m, _tx) = scrape_of(hub());
        m.observe_handshake(Duration::from_micros(800));
        m.observe_handshake(Duration::from_millis(20));
        m.observe_handshake(Duration::from_secs(3));
        let (s, types) = parse(&m.encode());
        assert_eq!(types["dmvpn_ike_handshake_duration_seconds"], "histogram");
        let bucket = |le| {
            value(
                &s,
                "dmvpn_ike_handshake_duration_seconds_bucket",
                &[("le", le)],
            )
            .unwrap()
        };
        assert_eq!(bucket("0.001"), 1.0);
        assert_eq!(bucket("0.01"), 1.0);
        assert_eq!(bucket("0.025"), 2.0);
        assert_eq!(bucket("2.5"), 2.0);
        assert_eq!(bucket("10"), 3.0);
        assert_eq!(
            value(&s, "dmvpn_ike_handshake_duration_seconds_count", &[]),
            Some(3.0)
        );
    }

    async fn http(addr: SocketAddr, request: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_over_http() {
        let (m, _tx) = scrape_of(hub());
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(server.run(Arc::new(m)));
        let ok = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("dmvpn_peer_packets_total{"));
        let not_found = http(addr, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(not_found.starts_with("HTTP/1.1 404 "), "{not_found}");
        let post = http(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_REQUEST_HEAD));
        let mut c = TcpStream::connect(addr).await.unwrap();
        // The server may close before reading everything: only the answer matters.
        let _ = c.write_all(&huge).await;
        let mut out = String::new();
        let _ = c.read_to_string(&mut out).await;
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    }
}
