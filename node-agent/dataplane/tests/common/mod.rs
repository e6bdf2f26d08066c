//! A seed-topology simulation for the dataplane: hub and two spokes (../shared/seeds/,
//! underlay on 198.18.0.0/15), each a [`Forwarder`] with a fake TUN device and a fake UDP
//! endpoint on one [`FakeNetwork`], stepped on virtual time (1 ms a step). For ESP, the test
//! plays the IKE engine: each `NeedSa` gets a fixed-key AES-256-GCM pair on both routers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod netns;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use dmvpn_dataplane::os::fake::{FakeNetwork, FakeTun, FakeUdp};
use dmvpn_dataplane::os::{TunDevice, UdpEndpoint};
use dmvpn_dataplane::{
    EspInUdp, EspMode, Event, Forwarder, ForwarderConfig, GreInUdp, Output, PacketBatch,
    Protection, StaticRoute,
};
use dmvpn_esp::{Algorithm, InboundSa, KeyMaterial, OutboundSa, SaConfig, SequenceNumbers};
use dmvpn_nhrp::{Config, Engine, NhsConfig, Password, Prefix, Role, SplitMix64};

pub const HUB: usize = 0;
pub const SPOKE1: usize = 1;
pub const SPOKE2: usize = 2;
/// The tunnel key of the seed (`tunnel key 100`).
pub const KEY: u32 = 100;

/// Polls a future of the fakes, which never wait.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a fake returned Pending"),
    }
}

pub fn nbma(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1 + i as u8))
}

pub fn tunnel(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1 + i as u8))
}

pub fn lan(i: usize) -> Prefix {
    Prefix::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1 + i as u8, 0)), 24).unwrap()
}

/// The NHRP configuration of router `i` of the seed (hub redirect, spokes shortcut).
pub fn nhrp_config(i: usize) -> Config {
    let role = if i == HUB { Role::Hub } else { Role::Spoke };
    let mut c = Config::new(role, tunnel(i), 24, nbma(i));
    c.password = Some(Password::new(b"@lpha").unwrap());
    c.advertised_prefixes.push(lan(i));
    c.holdtime = 300;
    if i == HUB {
        c.redirect = true;
    } else {
        c.shortcut = true;
        c.nhs.push(NhsConfig {
            tunnel: tunnel(HUB),
            nbma: nbma(HUB),
            priority: 0,
        });
    }
    c
}

/// The forwarder configuration of router `i`: key 100, spokes route 192.168.0.0/16 to the
/// hub.
pub fn forwarder_config(i: usize) -> ForwarderConfig {
    let mut c = ForwarderConfig {
        gre_key: Some(KEY),
        ..ForwarderConfig::default()
    };
    if i != HUB {
        c.static_routes.push(StaticRoute {
            prefix: Prefix::new("192.168.0.0".parse().unwrap(), 16).unwrap(),
            via: tunnel(HUB),
        });
    }
    c
}

pub struct Router<P: Protection> {
    pub fwd: Forwarder<P>,
    pub tun: FakeTun,
    pub udp: FakeUdp,
    pub out: Output,
    pub tun_batch: PacketBatch,
    pub udp_batch: PacketBatch,
    pub events: Vec<Event>,
}

impl<P: Protection> Router<P> {
    /// One step at `now`: TUN batch out, UDP batch in, timers, then the output written.
    pub fn step(&mut self, now: Instant) {
        ready(self.tun.recv_batch(&mut self.tun_batch)).unwrap();
        self.fwd.outbound(now, &mut self.tun_batch, &mut self.out);
        ready(self.udp.recv_batch(&mut self.udp_batch)).unwrap();
        self.fwd.inbound(now, &mut self.udp_batch, &mut self.out);
        if self.fwd.poll_timeout().is_some_and(|t| t <= now) {
            self.fwd.handle_timeout(now, &mut self.out);
        }
        self.flush();
        while let Some(e) = self.fwd.poll_event() {
            self.events.push(e);
        }
    }

    pub fn flush(&mut self) {
        ready(self.udp.send_batch(&self.out.udp)).unwrap();
        ready(self.tun.send_batch(&self.out.tun)).unwrap();
        self.out.clear();
    }
}

pub struct Sim<P: Protection> {
    pub net: FakeNetwork,
    pub base: Instant,
    pub now: Instant,
    pub routers: Vec<Router<P>>,
}

fn engine(i: usize, now: Instant) -> Engine {
    Engine::new(nhrp_config(i), Box::new(SplitMix64(7 + i as u64)), now).unwrap()
}

impl<P: Protection> Sim<P> {
    fn build(port: u16, protection: impl Fn(usize) -> P) -> Self {
        let net = FakeNetwork::new();
        let now = Instant::now();
        let routers = (0..3)
            .map(|i| Router {
                fwd: Forwarder::new(forwarder_config(i), engine(i, now), protection(i)).unwrap(),
                tun: FakeTun::default(),
                udp: net.bind(SocketAddr::new(nbma(i), port)),
                out: Output::new(64, 2048),
                tun_batch: PacketBatch::new(64, 2048),
                udp_batch: PacketBatch::new(64, 2048),
                events: Vec::new(),
            })
            .collect();
        Sim {
            net,
            base: now,
            now,
            routers,
        }
    }

    /// Steps every router once and advances the clock 1 ms; `ike` sees each router's new
    /// events.
    pub fn step_with(&mut self, ike: &mut impl FnMut(&mut Self, usize, &Event)) {
        for i in 0..self.routers.len() {
            let now = self.now;
            self.routers[i].step(now);
            let events = std::mem::take(&mut self.routers[i].events);
            for e in &events {
                ike(self, i, e);
            }
            self.routers[i].events.extend(events);
        }
        self.now += Duration::from_millis(1);
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }
}

impl Sim<GreInUdp> {
    /// The seed topology over plaintext GRE-in-UDP.
    pub fn plain() -> Self {
        Sim::build(4754, |_| GreInUdp::default())
    }

    pub fn step(&mut self) {
        self.step_with(&mut |_, _, _| {});
    }
}

/// The fixed test key of the SA from router `a` to router `b`.
pub fn sa_key(a: usize, b: usize) -> KeyMaterial {
    let mut k = [0u8; 36];
    k.iter_mut()
        .enumerate()
        .for_each(|(n, x)| *x = (n as u8).wrapping_mul(7) ^ (a as u8 * 16 + b as u8));
    KeyMaterial::new(Algorithm::AesGcm16_256, &k).unwrap()
}

/// The SPI of the SA from router `a` to router `b`.
pub fn spi(a: usize, b: usize) -> u32 {
    0x1000 + (a as u32) * 16 + b as u32
}

pub fn sa_config(spi: u32) -> SaConfig {
    SaConfig {
        spi,
        sequence_numbers: SequenceNumbers::Short,
        lifetime: Default::default(),
    }
}

impl Sim<EspInUdp> {
    /// The seed topology over ESP-in-UDP, transport mode.
    pub fn esp() -> Self {
        Sim::build(4500, |i| EspInUdp::new(EspMode::Transport, nbma(i)))
    }

    /// Installs the fixed-key SA pair between routers `a` and `b` on both.
    pub fn install_pair(&mut self, a: usize, b: usize) {
        let now = self.now;
        for (me, peer) in [(a, b), (b, a)] {
            let tx = OutboundSa::new(sa_config(spi(me, peer)), &sa_key(me, peer), now).unwrap();
            let rx = InboundSa::new(sa_config(spi(peer, me)), &sa_key(peer, me), now).unwrap();
            let r = &mut self.routers[me];
            if r.fwd.protection().ready(nbma(peer)) {
                continue;
            }
            r.fwd
                .install_sa(
                    now,
                    nbma(peer),
                    SocketAddr::new(nbma(peer), 4500),
                    tx,
                    rx,
                    &mut r.out,
                )
                .unwrap();
            r.flush();
        }
    }

    /// A step in which every `NeedSa` is answered at once, as an IKE engine would.
    pub fn step(&mut self) {
        self.step_with(&mut |sim, i, e| {
            if let Event::NeedSa { peer } = e {
                let j = (0..3).find(|j| nbma(*j) == *peer).unwrap();
                sim.install_pair(i, j);
            }
        });
    }
}

/// A UDP packet from `src` to `dst` with DF (dmvpn-testkit framing).
pub fn udp_packet(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    dmvpn_testkit::ipv4(
        Ipv4Addr::from(src),
        Ipv4Addr::from(dst),
        17,
        &dmvpn_testkit::udp(40000, 5001, &vec![0x5a; len]),
    )
}
