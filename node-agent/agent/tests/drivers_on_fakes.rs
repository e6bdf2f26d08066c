//! Three drivers (the seed's hub and spokes, from `e2e/lab/*.yaml` with the `ipsec` section
//! taken out) on the in-memory fakes: one `FakeNetwork` underlay, fake TUN devices and fake
//! routing tables, stepped on virtual time 1 ms at a time. Proves registration, the routes
//! the NHRP cache implies, spoke-to-spoke traffic through the hub and then over a DMVPN
//! phase 3 shortcut, the published snapshots, and a clean shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use dmvpn_agent::driver::{DeviceInfo, Driver, Os};
use dmvpn_agent::ipsec::Unprotected;
use dmvpn_agent::settings::Settings;
use dmvpn_crds::DmvpnNodeSpec;
use dmvpn_dataplane::os::fake::{FakeNetwork, FakeRouteTable, FakeTun, FakeUdp};
use dmvpn_dataplane::{Forwarder, GreInUdp};
use dmvpn_nhrp::{Engine, EntryType, SplitMix64};

type FakeDriver = Driver<GreInUdp, Unprotected, FakeTun, FakeUdp, FakeRouteTable>;

const SITES: [&str; 3] = ["hub", "spoke1", "spoke2"];
const IFINDEX: u32 = 7;

fn settings(site: &str) -> Settings {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../e2e/lab/{site}.yaml"));
    let mut spec = DmvpnNodeSpec::load(&path).unwrap();
    spec.ipsec = None;
    Settings::from_spec(&spec).unwrap()
}

struct Lab {
    net: FakeNetwork,
    now: Instant,
    routers: Vec<FakeDriver>,
}

impl Lab {
    async fn new() -> Self {
        let net = FakeNetwork::new();
        let now = Instant::now();
        let mut routers = Vec::new();
        for (i, site) in SITES.iter().enumerate() {
            let s = settings(site);
            let engine = Engine::new(s.nhrp.clone(), Box::new(SplitMix64(i as u64)), now).unwrap();
            let fwd = Forwarder::new(s.forwarder.clone(), engine, GreInUdp::default()).unwrap();
            let os = Os {
                tun: FakeTun::default(),
                udp: net.bind(SocketAddr::new(s.underlay, 4754)),
                routes: FakeRouteTable::default(),
            };
            let device = DeviceInfo {
                interface: s.interface.clone(),
                ifindex: IFINDEX,
                mtu: s.mtu,
                insecure: true,
            };
            let mut d = Driver::new(fwd, Unprotected, os, device, now);
            d.start(now).await.unwrap();
            routers.push(d);
        }
        Lab { net, now, routers }
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

    fn routes(&mut self, i: usize) -> Vec<String> {
        let table = &self.routers[i].os_mut().routes;
        table.routes.iter().map(|r| r.prefix.to_string()).collect()
    }
}

fn lan_host(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, i, 10)
}

fn packet(from: u8, to: u8, n: u8) -> Vec<u8> {
    let payload = dmvpn_testkit::udp(5000, 6000, &[n; 32]);
    dmvpn_testkit::ipv4(lan_host(from), lan_host(to), 17, &payload)
}

fn registered(lab: &Lab) -> bool {
    lab.routers[1..].iter().all(|r| {
        let s = r.snapshot_channel().borrow().clone();
        s.nhs.iter().all(|n| n.up)
    })
}

#[tokio::test(flavor = "current_thread")]
async fn spokes_register_then_a_shortcut_takes_over_from_the_hub() {
    let mut lab = Lab::new().await;
    // Before any registration: the spokes route the other LANs to the hub (static routes).
    assert_eq!(lab.routes(1), ["192.168.1.0/24", "192.168.3.0/24"]);
    assert!(lab.routes(0).is_empty());

    assert!(lab.run_until(Duration::from_secs(2), registered).await);
    // Registrations give the hub a route to each spoke's LAN.
    lab.advance(Duration::from_millis(10)).await;
    assert_eq!(lab.routes(0), ["192.168.2.0/24", "192.168.3.0/24"]);
    let hub = lab.routers[0].snapshot_channel();
    {
        let s = hub.borrow();
        let tunnels: Vec<String> = s.dmvpn.peers.iter().map(|p| p.tunnel.to_string()).collect();
        assert_eq!(tunnels, ["10.1.1.2", "10.1.1.3"]);
        assert!(s.insecure);
        assert_eq!(s.routes.len(), 2);
    }

    // spoke1 LAN → spoke2 LAN: the first packets go through the hub.
    lab.net.start_capture();
    let hub_nbma: IpAddr = "198.18.0.1".parse().unwrap();
    for n in 0..5u8 {
        lab.routers[1].os_mut().tun.inject(&packet(2, 3, n));
        lab.step().await;
    }
    let through_hub = lab
        .net
        .captured()
        .iter()
        .filter(|d| d.to.ip() == hub_nbma && d.payload.get(2..4) == Some(&[0x08, 0x00][..]))
        .count();
    assert!(through_hub >= 1, "the first packet hairpins at the hub");

    // The hub's redirect makes spoke1 resolve spoke2: a shortcut and its route.
    let shortcut = |lab: &Lab| {
        let s = lab.routers[1].snapshot_channel().borrow().clone();
        s.nhrp
            .iter()
            .any(|e| e.kind == EntryType::Shortcut && e.prefix.to_string() == "192.168.3.0/24")
    };
    assert!(lab.run_until(Duration::from_secs(1), shortcut).await);
    lab.advance(Duration::from_millis(5)).await;
    let forwarded = lab.routers[0].forwarder().counters().forwarded;

    // From now on packets go spoke to spoke, and every one arrives.
    lab.routers[2].os_mut().tun.take_written();
    for n in 0..20u8 {
        lab.routers[1].os_mut().tun.inject(&packet(2, 3, n));
        lab.step().await;
    }
    lab.advance(Duration::from_millis(5)).await;
    assert_eq!(lab.routers[0].forwarder().counters().forwarded, forwarded);
    let written = lab.routers[2].os_mut().tun.take_written();
    assert_eq!(written.len(), 20);
    assert!(
        written
            .iter()
            .enumerate()
            .all(|(n, p)| p[28..] == [n as u8; 32])
    );
    // Counters reach the snapshot within its refresh period.
    lab.advance(dmvpn_agent::driver::SNAPSHOT_REFRESH).await;
    let spoke1 = lab.routers[1].snapshot_channel().borrow().clone();
    assert!(
        spoke1
            .routes
            .iter()
            .any(|p| p.to_string() == "192.168.3.0/24")
    );
    assert!(spoke1.dataplane.udp_tx > 20);
    let to_spoke2 = spoke1
        .peers
        .iter()
        .find(|p| p.nbma.to_string() == "198.18.0.3")
        .unwrap();
    assert!(to_spoke2.counters.tx_packets >= 20);

    // Shutdown: spoke1 purges its registration at the hub and removes its routes.
    let now = lab.now;
    lab.routers[1].shutdown(now).await.unwrap();
    assert!(lab.routes(1).is_empty());
    assert!(lab.routers[1].snapshot_channel().borrow().routes.is_empty());
    let gone = |lab: &Lab| {
        let s = lab.routers[0].snapshot_channel().borrow().clone();
        !s.dmvpn
            .peers
            .iter()
            .any(|p| p.tunnel.to_string() == "10.1.1.2")
    };
    // spoke1 is stopped: only the hub and spoke2 step on.
    lab.routers.remove(1);
    lab.run_until(Duration::from_millis(100), gone).await;
    assert!(gone(&lab), "the hub dropped spoke1 on its purge");
    assert_eq!(lab.routes(0), ["192.168.3.0/24"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_crash_leftover_route_is_removed_at_start() {
    let s = settings("spoke1");
    let now = Instant::now();
    let net = FakeNetwork::new();
    let mut routes = FakeRouteTable::default();
    let leftover = dmvpn_dataplane::os::OsRoute {
        prefix: dmvpn_nhrp::Prefix::new("192.168.99.0".parse().unwrap(), 24).unwrap(),
        ifindex: 3,
        via: None,
    };
    routes.routes.insert(leftover);
    let engine = Engine::new(s.nhrp.clone(), Box::new(SplitMix64(1)), now).unwrap();
    let fwd = Forwarder::new(s.forwarder.clone(), engine, GreInUdp::default()).unwrap();
    let os = Os {
        tun: FakeTun::default(),
        udp: net.bind(SocketAddr::new(s.underlay, 4754)),
        routes,
    };
    let device = DeviceInfo {
        interface: s.interface.clone(),
        ifindex: IFINDEX,
        mtu: s.mtu,
        insecure: true,
    };
    let mut d = Driver::new(fwd, Unprotected, os, device, now);
    d.start(now).await.unwrap();
    let table = &d.os_mut().routes.routes;
    assert!(!table.contains(&leftover));
    assert!(table.iter().all(|r| r.ifindex == IFINDEX));
    assert_eq!(table.len(), 2);
    // The spoke registers with its (absent) hub.
    d.step(now + Duration::from_millis(1)).await.unwrap();
    assert!(net.unreachable() >= 1);
}
