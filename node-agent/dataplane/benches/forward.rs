//! The forwarding core without syscalls, ESP AES-256-GCM with fixed keys: a batch of 32
//! packets from spoke 1's TUN side routed, GRE framed and sealed (`outbound`), and the same
//! then opened, decapsulated and routed at the hub (`outbound+inbound`), at 64 and 1400
//! bytes. Throughput is packets per second; the inbound cost is the difference.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmvpn_dataplane::{
    EspInUdp, EspMode, Forwarder, ForwarderConfig, Output, PacketBatch, StaticRoute,
};
use dmvpn_esp::{Algorithm, InboundSa, KeyMaterial, OutboundSa, SaConfig, SequenceNumbers};
use dmvpn_nhrp::{Config, Engine, NhsConfig, Prefix, Role, SplitMix64};

const BATCH: usize = 32;

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(spi: u32, now: Instant) -> (OutboundSa, InboundSa) {
    let key = KeyMaterial::new(Algorithm::AesGcm16_256, &[0x42; 36]).unwrap();
    let config = SaConfig {
        spi,
        sequence_numbers: SequenceNumbers::Extended,
        lifetime: Default::default(),
    };
    (
        OutboundSa::new(config, &key, now).unwrap(),
        InboundSa::new(config, &key, now).unwrap(),
    )
}

/// Spoke 1 and the hub of the seed, with an SA pair between them.
fn pair(now: Instant) -> (Forwarder<EspInUdp>, Forwarder<EspInUdp>) {
    let mut spoke = Config::new(Role::Spoke, a("10.1.1.2"), 24, a("198.18.0.2"));
    spoke.nhs.push(NhsConfig {
        tunnel: a("10.1.1.1"),
        nbma: a("198.18.0.1"),
        priority: 0,
    });
    let mut hub = Config::new(Role::Hub, a("10.1.1.1"), 24, a("198.18.0.1"));
    hub.advertised_prefixes
        .push(Prefix::new(a("192.168.1.0"), 24).unwrap());
    let config = ForwarderConfig {
        gre_key: Some(100),
        static_routes: vec![StaticRoute {
            prefix: Prefix::new(a("192.168.0.0"), 16).unwrap(),
            via: a("10.1.1.1"),
        }],
        ..ForwarderConfig::default()
    };
    let engine = |c| Engine::new(c, Box::new(SplitMix64(1)), now).unwrap();
    let mut s = Forwarder::new(
        config.clone(),
        engine(spoke),
        EspInUdp::new(EspMode::Transport, a("198.18.0.2")),
    )
    .unwrap();
    let mut h = Forwarder::new(
        config,
        engine(hub),
        EspInUdp::new(EspMode::Transport, a("198.18.0.1")),
    )
    .unwrap();
    let mut out = Output::new(BATCH, 2048);
    let (s_tx, h_rx) = sa(0x1001, now);
    let (h_tx, s_rx) = sa(0x1002, now);
    s.install_sa(
        now,
        a("198.18.0.1"),
        SocketAddr::new(a("198.18.0.1"), 4500),
        s_tx,
        s_rx,
        &mut out,
    )
    .unwrap();
    h.install_sa(
        now,
        a("198.18.0.2"),
        SocketAddr::new(a("198.18.0.2"), 4500),
        h_tx,
        h_rx,
        &mut out,
    )
    .unwrap();
    (s, h)
}

/// A `len`-byte UDP packet from spoke 1's LAN to the hub's (dmvpn-testkit framing).
fn packet(len: usize) -> Vec<u8> {
    dmvpn_testkit::ipv4(
        Ipv4Addr::new(192, 168, 2, 10),
        Ipv4Addr::new(192, 168, 1, 7),
        17,
        &dmvpn_testkit::udp(40000, 5001, &vec![0x5a; len - 28]),
    )
}

fn forward(c: &mut Criterion) {
    let now = Instant::now();
    for len in [64usize, 1400] {
        let mut group = c.benchmark_group(format!("forward_{len}B"));
        group.throughput(Throughput::Elements(BATCH as u64));
        let p = packet(len);
        let (mut spoke, mut hub) = pair(now);
        let mut tun = PacketBatch::new(BATCH, 2048);
        let mut rx = PacketBatch::new(BATCH, 2048);
        let mut out = Output::new(BATCH, 2048);
        let mut hub_out = Output::new(BATCH, 2048);
        group.bench_function("outbound", |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    tun.push_empty().load(&p);
                }
                spoke.outbound(now, &mut tun, &mut out);
                black_box(out.udp.len());
                out.clear();
            });
        });
        group.bench_function("outbound+inbound", |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    tun.push_empty().load(&p);
                }
                spoke.outbound(now, &mut tun, &mut out);
                for i in 0..out.udp.len() {
                    let buf = &mut out.udp.bufs_mut()[i];
                    buf.addr = Some(SocketAddr::new(a("198.18.0.2"), 4500));
                    rx.push_swap(buf);
                }
                out.clear();
                hub.inbound(now, &mut rx, &mut hub_out);
                assert_eq!(hub_out.tun.len(), BATCH);
                hub_out.clear();
            });
        });
        group.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
