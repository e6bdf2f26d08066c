//! The operational surface of three IPsec-protected drivers (the seed's hub and spokes from
//! `e2e/lab/*.yaml`, PSK, IKEv2 on UDP 500 floating to 4500, ESP-in-UDP) on the in-memory
//! fakes, stepped on virtual time 1 ms at a time: `clear crypto sa` sends DELETEs (RFC 7296
//! section 1.4.1) and traffic rebuilds the SAs, `clear ip nhrp` drops registrations and
//! shortcuts with their routes, a shutdown deletes the IKE SAs so that the hub drops them at
//! once, and `/metrics` (handshake histogram included) moves with the traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmvpn_agent::admin::AdminCommand;
use dmvpn_agent::driver::{DeviceInfo, Driver, Os};
use dmvpn_agent::ipsec::IkeKeys;
use dmvpn_agent::metrics::{Metrics, handshake_histogram};
use dmvpn_agent::snapshot::IkeSaState;
use dmvpn_dataplane::os::fake::{FakeNetwork, FakeRouteTable, FakeTun, FakeUdp};
use dmvpn_dataplane::{EspInUdp, Forwarder};
use dmvpn_nhrp::{Engine, EntryType, SplitMix64};
use dmvpn_wire::ikev2::{ExchangeType, Packet};
use dmvpn_wire::udp_encap::{Datagram, IKE_PORT, NAT_T_PORT};
use prometheus::Histogram;

type IkeDriver = Driver<EspInUdp, IkeKeys<FakeUdp>, FakeTun, FakeUdp, FakeRouteTable>;

const SITES: [&str; 3] = ["hub", "spoke1", "spoke2"];
const HUB: usize = 0;
const SPOKE1: usize = 1;
const IFINDEX: u32 = 7;

struct Lab {
    net: FakeNetwork,
    now: Instant,
    routers: Vec<IkeDriver>,
    handshakes: Vec<Histogram>,
}

impl Lab {
    async fn new() -> Self {
        let net = FakeNetwork::new();
        let now = Instant::now();
        let mut routers = Vec::new();
        let mut handshakes = Vec::new();
        for (i, site) in SITES.iter().enumerate() {
            let path =
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../e2e/lab/{site}.yaml"));
            let (_, s, ipsec) = dmvpn_agent::agent::load(&path, false).unwrap();
            let ipsec = ipsec.unwrap();
            let engine = Engine::new(s.nhrp.clone(), Box::new(SplitMix64(i as u64)), now).unwrap();
            let protection = EspInUdp::new(ipsec.mode, s.underlay);
            let fwd = Forwarder::new(s.forwarder.clone(), engine, protection).unwrap();
            let ike = dmvpn_ike::Engine::new(ipsec.ike, Box::new(dmvpn_ike::SystemRng::new()), now)
                .unwrap();
            let histogram = handshake_histogram().unwrap();
            let keys = IkeKeys::new(ike, net.bind(SocketAddr::new(s.underlay, IKE_PORT)), None)
                .with_handshake_histogram(histogram.clone());
            let os = Os {
                tun: FakeTun::default(),
                udp: net.bind(SocketAddr::new(s.underlay, NAT_T_PORT)),
                routes: FakeRouteTable::default(),
            };
            let device = DeviceInfo {
                interface: s.interface.clone(),
                ifindex: IFINDEX,
                mtu: s.mtu,
                insecure: false,
            };
            let mut d = Driver::new(fwd, keys, os, device, now);
            d.start(now).await.unwrap();
            routers.push(d);
            handshakes.push(histogram);
        }
        Lab {
            net,
            now,
            routers,
            handshakes,
        }
    }

    async fn step(&mut self) {
        for r in &mut self.routers {
            r.step(self.now).await.unwrap();
        }
        self.now += Duration::from_millis(1);
    }

    async fn run_until(&mut self, limit: Duration, done: impl Fn(&Lab) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            self.step().await;
            if done(self) {
                return true;
            }
        }
        false
    }

    async fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step().await;
        }
    }

    fn snapshot(&self, i: usize) -> Arc<dmvpn_agent::snapshot::RouterSnapshot> {
        self.routers[i].snapshot_channel().borrow().clone()
    }

    /// The IKE SAs of router `i`, established or not: (peer, SPIi, SPIr, established).
    fn ike_sas(&self, i: usize) -> Vec<(IpAddr, u64, u64, bool)> {
        self.routers[i]
            .keys()
            .engine()
            .ike_sas()
            .into_iter()
            .map(|sa| (sa.peer, sa.spi_i, sa.spi_r, sa.established))
            .collect()
    }

    fn routes(&mut self, i: usize) -> Vec<String> {
        let table = &self.routers[i].os_mut().routes;
        table.routes.iter().map(|r| r.prefix.to_string()).collect()
    }

    /// IKE INFORMATIONAL requests carrying a DELETE of the IKE SA seen since the capture
    /// started, by sender: (from, SPIi).
    fn deletes(&self) -> Vec<(IpAddr, u64)> {
        self.net
            .captured()
            .iter()
            .filter_map(|d| {
                let message = match d.to.port() {
                    NAT_T_PORT => match Datagram::parse(&d.payload) {
                        Ok(Datagram::Ike(m)) => m,
                        _ => return None,
                    },
                    _ => &d.payload,
                };
                let p = Packet::new_checked(message).ok()?;
                // An INFORMATIONAL request (section 1.4); it is encrypted, so the DELETE
                // inside is proven by the peer dropping the SA, which the tests check.
                (p.exchange_type() == ExchangeType::Informational && !p.flags().response())
                    .then(|| (d.from.ip(), p.initiator_spi()))
            })
            .collect()
    }
}

fn lan_host(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, i, 10)
}

fn packet(from: u8, to: u8, n: u8) -> Vec<u8> {
    let payload = dmvpn_testkit::udp(5000, 6000, &[n; 32]);
    dmvpn_testkit::ipv4(lan_host(from), lan_host(to), 17, &payload)
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn registered(lab: &Lab) -> bool {
    lab.routers[1..].iter().all(|r| {
        let s = r.snapshot_channel().borrow().clone();
        s.nhs.iter().all(|n| n.up)
    }) && lab.snapshot(HUB).ipsec_sas.len() == 2
}

#[tokio::test(flavor = "current_thread")]
async fn clear_crypto_sa_deletes_every_sa_and_traffic_rebuilds_them() {
    let mut lab = Lab::new().await;
    assert!(lab.run_until(Duration::from_secs(5), registered).await);
    lab.advance(Duration::from_millis(10)).await;
    let old: Vec<_> = lab.ike_sas(HUB);
    assert_eq!(old.len(), 2);
    assert!(old.iter().all(|sa| sa.3));
    // Every router timed its handshakes (RFC 7296 sections 1.2 and 2.17).
    assert_eq!(lab.handshakes[HUB].get_sample_count(), 2);
    assert_eq!(lab.handshakes[SPOKE1].get_sample_count(), 1);

    lab.net.start_capture();
    let now = lab.now;
    lab.routers[HUB]
        .clear(now, AdminCommand::ClearCryptoSa)
        .await
        .unwrap();
    // The ESP SAs go at once; a DELETE goes to each peer.
    assert!(lab.snapshot(HUB).ipsec_sas.is_empty());
    let deletes = lab.deletes();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert!(deletes.iter().all(|(from, _)| *from == addr("198.18.0.1")));
    // The spokes drop their half as soon as the DELETE arrives: no DPD wait.
    let spokes_dropped = |lab: &Lab| {
        (1..3).all(|i| {
            lab.ike_sas(i)
                .iter()
                .all(|sa| !old.iter().any(|o| o.1 == sa.1))
        }) && lab.snapshot(SPOKE1).ipsec_sas.is_empty()
    };
    assert!(
        lab.run_until(Duration::from_millis(20), spokes_dropped)
            .await
    );
    lab.advance(Duration::from_millis(5)).await;
    assert!(lab.ike_sas(HUB).is_empty(), "the DELETEs were answered");

    // Traffic rebuilds them: spoke1 LAN → hub LAN arrives over a new SA.
    lab.routers[HUB].os_mut().tun.take_written();
    lab.routers[SPOKE1].os_mut().tun.inject(&packet(2, 1, 7));
    let delivered = |lab: &mut Lab| !lab.routers[HUB].os_mut().tun.take_written().is_empty();
    let mut arrived = false;
    for _ in 0..2000 {
        lab.step().await;
        if delivered(&mut lab) {
            arrived = true;
            break;
        }
    }
    assert!(arrived, "the packet waited for the new SA and went");
    let new = lab.ike_sas(SPOKE1);
    assert_eq!(new.len(), 1);
    assert!(new[0].3 && !old.iter().any(|o| o.1 == new[0].1));
    assert_eq!(lab.handshakes[SPOKE1].get_sample_count(), 2);
    lab.advance(dmvpn_agent::driver::SNAPSHOT_REFRESH).await;
    let hub = lab.snapshot(HUB);
    assert_eq!(hub.ipsec_sas.len(), 1);
    assert_eq!(hub.ike_sas[0].state, IkeSaState::Established);
}

#[tokio::test(flavor = "current_thread")]
async fn a_shutdown_deletes_the_ike_sas_and_the_hub_drops_them_at_once() {
    let mut lab = Lab::new().await;
    assert!(lab.run_until(Duration::from_secs(5), registered).await);
    lab.advance(Duration::from_millis(10)).await;
    let spoke1 = addr("198.18.0.2");
    assert!(lab.ike_sas(HUB).iter().any(|sa| sa.0 == spoke1));

    lab.net.start_capture();
    let now = lab.now;
    lab.routers[SPOKE1].shutdown(now).await.unwrap();
    assert!(lab.routes(SPOKE1).is_empty());
    let deletes = lab.deletes();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].0, spoke1);
    // spoke1 is stopped: only the hub and spoke2 step on. The hub drops the SA on the
    // DELETE, long before dead peer detection would.
    lab.routers.remove(SPOKE1);
    let dropped = |lab: &Lab| {
        !lab.ike_sas(HUB).iter().any(|sa| sa.0 == spoke1)
            && !lab
                .snapshot(HUB)
                .ipsec_sas
                .iter()
                .any(|sa| sa.peer == spoke1)
    };
    assert!(lab.run_until(Duration::from_millis(20), dropped).await);
    // The purge of its registration went first, under the SA: the hub forgot it too.
    lab.advance(dmvpn_agent::driver::SNAPSHOT_REFRESH).await;
    let hub = lab.snapshot(HUB);
    assert!(!hub.dmvpn.peers.iter().any(|p| p.nbma == spoke1));
    assert_eq!(hub.ike_sas.len(), 1, "spoke2's SA stays");
}

#[tokio::test(flavor = "current_thread")]
async fn clear_ip_nhrp_drops_registrations_shortcuts_and_their_routes() {
    let mut lab = Lab::new().await;
    assert!(lab.run_until(Duration::from_secs(5), registered).await);
    lab.advance(Duration::from_millis(10)).await;
    assert_eq!(lab.routes(HUB), ["192.168.2.0/24", "192.168.3.0/24"]);

    // A shortcut at spoke1 for spoke2's LAN (DMVPN phase 3).
    for n in 0..3u8 {
        lab.routers[SPOKE1].os_mut().tun.inject(&packet(2, 3, n));
        lab.step().await;
    }
    let shortcut = |lab: &Lab| {
        lab.snapshot(SPOKE1)
            .nhrp
            .iter()
            .any(|e| e.kind == EntryType::Shortcut)
    };
    assert!(lab.run_until(Duration::from_secs(2), shortcut).await);
    lab.advance(Duration::from_millis(5)).await;

    // At spoke1: the shortcut goes (its route falls back to the static one via the hub), a
    // registration goes out at once.
    let received = |lab: &Lab| {
        lab.routers[HUB]
            .forwarder()
            .engine()
            .counters()
            .received
            .get(dmvpn_wire::nhrp::Operation::RegistrationRequest)
    };
    let before = received(&lab);
    let now = lab.now;
    lab.routers[SPOKE1]
        .clear(now, AdminCommand::ClearIpNhrp)
        .await
        .unwrap();
    assert!(!shortcut(&lab));
    lab.net.start_capture();
    lab.routers[SPOKE1].os_mut().tun.inject(&packet(2, 3, 9));
    lab.step().await;
    let to_hub = lab
        .net
        .captured()
        .iter()
        .any(|d| d.from.ip() == addr("198.18.0.2") && d.to.ip() == addr("198.18.0.1"));
    assert!(to_hub, "spoke2's LAN goes through the hub again");
    assert!(
        lab.run_until(Duration::from_millis(50), |lab| received(lab) > before)
            .await
    );

    // At the hub: the registrations and the routes to the spokes' LANs go.
    let now = lab.now;
    lab.routers[HUB]
        .clear(now, AdminCommand::ClearIpNhrp)
        .await
        .unwrap();
    assert!(lab.routes(HUB).is_empty());
    let hub = lab.snapshot(HUB);
    assert!(hub.nhrp.iter().all(|e| e.kind != EntryType::Registered));
    assert!(hub.dmvpn.peers.is_empty());
    // The IPsec SAs are not NHRP's: they stay.
    assert_eq!(hub.ipsec_sas.len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn metrics_move_with_the_traffic() {
    let mut lab = Lab::new().await;
    assert!(lab.run_until(Duration::from_secs(5), registered).await);
    for n in 0..10u8 {
        lab.routers[SPOKE1].os_mut().tun.inject(&packet(2, 1, n));
        lab.step().await;
    }
    lab.advance(dmvpn_agent::driver::SNAPSHOT_REFRESH).await;
    let metrics = Metrics::new(
        lab.routers[HUB].snapshot_channel(),
        lab.handshakes[HUB].clone(),
    )
    .unwrap();
    let text = metrics.encode();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let spoke1 = "peer=\"198.18.0.2\"";
    assert!(
        value(&format!(
            "dmvpn_peer_packets_total{{direction=\"rx\",{spoke1}}}"
        )) >= 10.0
    );
    assert!(
        value(&format!(
            "dmvpn_peer_bytes_total{{direction=\"tx\",{spoke1}}}"
        )) > 0.0
    );
    assert!(
        value(&format!(
            "dmvpn_esp_packets_total{{direction=\"rx\",{spoke1}}}"
        )) >= 10.0
    );
    assert!(
        value("dmvpn_nhrp_messages_total{direction=\"received\",type=\"registration_request\"}")
            >= 2.0
    );
    assert_eq!(value("dmvpn_ike_sas{state=\"established\"}"), 2.0);
    assert_eq!(value("dmvpn_ike_handshake_duration_seconds_count"), 2.0);
    assert!(value("dmvpn_tun_packets_total{direction=\"tx\"}") >= 10.0);
}
