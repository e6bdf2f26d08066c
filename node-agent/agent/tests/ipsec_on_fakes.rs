//! The seed's hub and spoke1 (`e2e/lab/*.yaml`, IPsec included: IKEv2 with the lab's
//! pre-shared key, ESP-in-UDP) as drivers on the in-memory fakes, stepped on virtual time
//! 1 ms at a time: the hub crashes and restarts with no SAs and no cache, and the spoke,
//! whose next registration goes unanswered, negotiates new SAs and registers again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
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
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../e2e/lab/{site}.yaml"));
    let mut spec = DmvpnNodeSpec::load(&path).unwrap();
    if site != "hub" {
        spec.nhrp.registration_timeout = Some(5);
    }
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
    // The refresh (5 s) and three retransmissions (1-2 s backoff, doubling) go unanswered;
    // the spoke then negotiates new SAs and its next retransmission registers.
    assert!(
        lab.run_until(Duration::from_secs(40), hub_has_spoke).await,
        "{:?}",
        lab.routers[SPOKE].snapshot_channel().borrow().nhs
    );
    let spoke = lab.routers[SPOKE].snapshot_channel().borrow().clone();
    assert!(spoke.nhs.iter().all(|n| n.up));
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
