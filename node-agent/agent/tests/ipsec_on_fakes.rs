//! The seed's hub and spoke1 (`e2e/lab/*.yaml`, IPsec included: IKEv2 with the lab's
//! pre-shared key, ESP-in-UDP) as drivers on the in-memory fakes, stepped on virtual time
//! 1 ms at a time: the hub crashes and restarts with no SAs and no cache, and the spoke,
//! whose next registration goes unanswered (or, without frequent registrations, whose
//! traffic gets no answer: on-demand dead peer detection), negotiates new SAs and registers
//! again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use dmvpn_agent::driver::{DeviceInfo, Driver, Os};
use dmvpn_agent::ipsec::{IkeKeys, IpsecSettings};
use dmvpn_agent::settings::Settings;
use dmvpn_agent::snapshot::IkeSaState;
use dmvpn_crds::DmvpnNodeSpec;
use dmvpn_dataplane::os::fake::{FakeNetwork, FakeRouteTable, FakeTun, FakeUdp};
use dmvpn_dataplane::{EspInUdp, Forwarder};
use dmvpn_nhrp::{Engine, EntryType, SplitMix64};

type IpsecDriver = Driver<EspInUdp, IkeKeys<FakeUdp>, FakeTun, FakeUdp, FakeRouteTable>;

const HUB: usize = 0;
const SPOKE: usize = 1;

/// Site `site` of the lab, its spoke refreshing registrations every 5 s (IOS `ip nhrp
/// registration timeout 5`), started at `now`.
async fn router(net: &FakeNetwork, site: &str, seed: u64, now: Instant) -> IpsecDriver {
    router_with(net, site, seed, now, |spec| {
        if site != "hub" {
            spec.nhrp.registration_timeout = Some(5);
        }
    })
    .await
}

/// Site `site` of the lab with `edit` applied to its spec, started at `now`.
async fn router_with(
    net: &FakeNetwork,
    site: &str,
    seed: u64,
    now: Instant,
    edit: impl FnOnce(&mut DmvpnNodeSpec),
) -> IpsecDriver {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../e2e/lab/{site}.yaml"));
    let mut spec = DmvpnNodeSpec::load(&path).unwrap();
    edit(&mut spec);
    let s = Settings::from_spec(&spec).unwrap();
    let ipsec = IpsecSettings::from_spec(spec.ipsec.as_ref().unwrap(), s.underlay, false).unwrap();
    let engine = Engine::new(s.nhrp.clone(), Box::new(SplitMix64(seed)), now).unwrap();
    let protection = EspInUdp::new(ipsec.mode, s.underlay);
    let fwd = Forwarder::new(s.forwarder.clone(), engine, protection).unwrap();
    let ike =
        dmvpn_ike::Engine::new(ipsec.ike, Box::new(dmvpn_ike::SystemRng::new()), now).unwrap();
    let keys = IkeKeys::new(ike, net.bind(SocketAddr::new(s.underlay, 500)), None);
    let os = Os {
        tun: FakeTun::default(),
        udp: net.bind(SocketAddr::new(s.underlay, 4500)),
        routes: FakeRouteTable::default(),
    };
    let device = DeviceInfo {
        interface: s.interface.clone(),
        ifindex: 7,
        mtu: s.mtu,
        insecure: false,
    };
    let mut d = Driver::new(fwd, keys, os, device, now);
    d.start(now).await.unwrap();
    d
}

struct Lab {
    net: FakeNetwork,
    now: Instant,
    routers: Vec<IpsecDriver>,
}

impl Lab {
    async fn step(&mut self) {
        for r in &mut self.routers {
            r.step(self.now).await.unwrap();
        }
        self.now += Duration::from_millis(1);
    }

    async fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step().await;
        }
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
}

/// Whether the hub's cache holds spoke1's registration.
fn hub_has_spoke(lab: &Lab) -> bool {
    let s = lab.routers[HUB].snapshot_channel().borrow().clone();
    s.nhrp
        .iter()
        .any(|e| e.kind == EntryType::Registered && e.prefix.to_string() == "192.168.2.0/24")
}

#[tokio::test(flavor = "current_thread")]
async fn a_spoke_renegotiates_its_sas_with_a_hub_that_restarted() {
    let net = FakeNetwork::new();
    let now = Instant::now();
    let routers = vec![
        router(&net, "hub", 0, now).await,
        router(&net, "spoke1", 1, now).await,
    ];
    let mut lab = Lab { net, now, routers };
    assert!(lab.run_until(Duration::from_secs(2), hub_has_spoke).await);

    let old: Vec<(u64, u64)> = {
        let spoke = lab.routers[SPOKE].snapshot_channel().borrow().clone();
        spoke
            .ike_sas
            .iter()
            .map(|sa| (sa.spi_i, sa.spi_r))
            .collect()
    };
    assert_eq!(old.len(), 1);
    // The hub crashes and comes back: no SAs, no cache.
    lab.routers.remove(HUB);
    let hub = router(&lab.net, "hub", 2, lab.now).await;
    lab.routers.insert(HUB, hub);
    assert!(!hub_has_spoke(&lab));
    // The refresh (5 s) and three retransmissions (1-2 s backoff, doubling: NHS down within
    // 5 + 2 + 4 + 8 s) go unanswered; the spoke then negotiates new SAs and retransmits at
    // once over them, not after its next backoff (8-16 s more).
    let crash = lab.now;
    assert!(
        lab.run_until(Duration::from_secs(40), hub_has_spoke).await,
        "{:?}",
        lab.routers[SPOKE].snapshot_channel().borrow().nhs
    );
    let recovery = lab.now - crash;
    eprintln!("recovery with registrations every 5 s: {recovery:?}");
    assert!(recovery < Duration::from_secs(20), "{recovery:?}");
    // The old IKE SA's DELETE goes unanswered (the hub lost it): it shows as deleting
    // while retransmitted (RFC 7296 section 1.4.1), once the snapshot is refreshed.
    lab.advance(Duration::from_millis(1100)).await;
    let spoke = lab.routers[SPOKE].snapshot_channel().borrow().clone();
    assert!(spoke.nhs.iter().all(|n| n.up));
    let states: Vec<_> = spoke
        .ike_sas
        .iter()
        .filter(|sa| old.contains(&(sa.spi_i, sa.spi_r)))
        .map(|sa| sa.state)
        .collect();
    assert_eq!(states, [IkeSaState::Deleting], "{:?}", spoke.ike_sas);
    // The spoke's registration went over a new IKE SA, the one the restarted hub holds.
    let hub = lab.routers[HUB].snapshot_channel().borrow().clone();
    assert_eq!(hub.ike_sas.len(), 1);
    let fresh = (hub.ike_sas[0].spi_i, hub.ike_sas[0].spi_r);
    assert!(!old.contains(&fresh));
    assert!(
        spoke
            .ike_sas
            .iter()
            .any(|sa| (sa.spi_i, sa.spi_r) == fresh && sa.state == IkeSaState::Established)
    );
}

/// A packet from spoke1's LAN host to the hub's (UDP, `n` the payload's bytes).
fn to_hub_lan(n: u8) -> Vec<u8> {
    let payload = dmvpn_testkit::udp(5000, 6000, &[n; 32]);
    dmvpn_testkit::ipv4(
        Ipv4Addr::new(192, 168, 2, 10),
        Ipv4Addr::new(192, 168, 1, 10),
        17,
        &payload,
    )
}

/// The hub restarts while the spoke (default registration refresh: a third of the 7200 s
/// holding time) sends traffic to the hub's LAN, one packet every 500 ms; whether the hub
/// has the spoke's registration again within `limit`, and after how long.
async fn hub_restart_under_traffic(dpd_interval: Option<u16>, limit: Duration) -> Option<Duration> {
    let net = FakeNetwork::new();
    let now = Instant::now();
    let edit = |spec: &mut DmvpnNodeSpec| {
        spec.ipsec.as_mut().unwrap().dpd_interval = dpd_interval;
    };
    let routers = vec![
        router_with(&net, "hub", 0, now, edit).await,
        router_with(&net, "spoke1", 1, now, edit).await,
    ];
    let mut lab = Lab { net, now, routers };
    assert!(lab.run_until(Duration::from_secs(2), hub_has_spoke).await);
    lab.routers.remove(HUB);
    let hub = router_with(&lab.net, "hub", 2, lab.now, edit).await;
    lab.routers.insert(HUB, hub);
    let crash = lab.now;
    let mut n = 0u8;
    while lab.now - crash < limit {
        lab.routers[SPOKE].os_mut().tun.inject(&to_hub_lan(n));
        n = n.wrapping_add(1);
        if lab
            .run_until(Duration::from_millis(500), hub_has_spoke)
            .await
        {
            return Some(lab.now - crash);
        }
    }
    None
}

#[tokio::test(flavor = "current_thread")]
async fn on_demand_dpd_finds_a_restarted_hub_without_frequent_registrations() {
    // No `dpdInterval`: liveness is checked on demand (IOS `crypto ikev2 dpd 10 2
    // on-demand`, RFC 7296 section 2.4). The traffic gets no answer; 10 s later an empty
    // INFORMATIONAL goes, unanswered through its retransmissions (1 + 2 + 4 + 8 + 16 s),
    // the SA goes down, and the spoke negotiates new SAs and registers over them at once.
    let recovery = hub_restart_under_traffic(None, Duration::from_secs(60))
        .await
        .expect("the spoke registers again");
    assert!(recovery >= Duration::from_secs(31), "{recovery:?}");
    eprintln!("recovery with on-demand DPD: {recovery:?}");
    // With periodic checks only, and rarely (1 h), nothing notices within a minute.
    assert_eq!(
        hub_restart_under_traffic(Some(3600), Duration::from_secs(60)).await,
        None
    );
}
