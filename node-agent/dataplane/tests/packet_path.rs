//! The packet path of one router at a time, driven with crafted packets: hub hairpin with
//! its Traffic Indication, the TTL and loop checks, multicast replication, the SA queue and
//! its bound, inbound drops by reason, TCP MSS clamping and the ICMP errors of path MTU
//! discovery (their checksums judged by dmvpn-testkit's own arithmetic and by tshark).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use common::{HUB, KEY, SPOKE1, SPOKE2, Sim, nbma, udp_packet};
use dmvpn_dataplane::{
    DropReason, EspInUdp, EspMode, Event, Forwarder, ForwarderConfig, GreInUdp, Output,
    PacketBatch, StaticRoute,
};
use dmvpn_esp::{InboundSa, OutboundSa};
use dmvpn_nhrp::{Config, Engine, NhsConfig, Prefix, Role, SplitMix64};
use dmvpn_wire::nhrp::Operation;

/// A GRE-in-UDP datagram payload: GRE with key 100 around `inner`.
fn gre(protocol: u16, inner: &[u8]) -> Vec<u8> {
    let mut g = vec![0x20, 0, 0, 0, 0, 0, 0, KEY as u8];
    g[2..4].copy_from_slice(&protocol.to_be_bytes());
    g.extend_from_slice(inner);
    g
}

fn datagram(batch: &mut PacketBatch, from: IpAddr, port: u16, payload: &[u8]) {
    let b = batch.push_empty();
    assert!(b.load(payload));
    b.addr = Some(SocketAddr::new(from, port));
}

/// A registered plaintext seed topology, its outputs drained.
fn registered() -> Sim<GreInUdp> {
    let mut sim = Sim::plain();
    for _ in 0..20 {
        sim.step();
    }
    assert_eq!(sim.routers[HUB].fwd.engine().multicast_peers().len(), 2);
    for r in &mut sim.routers {
        r.tun.take_written();
    }
    sim
}

#[test]
fn hub_hairpins_and_sends_one_traffic_indication() {
    let mut sim = registered();
    let now = sim.now;
    let hub = &mut sim.routers[HUB];
    let mut rx = PacketBatch::new(8, 2048);
    let packet = udp_packet([192, 168, 2, 10], [192, 168, 3, 5], 64);
    for _ in 0..3 {
        datagram(&mut rx, nbma(SPOKE1), 4754, &gre(0x0800, &packet));
    }
    hub.fwd.inbound(now, &mut rx, &mut hub.out);
    assert_eq!(hub.fwd.counters().forwarded, 3);
    let sent = hub.out.udp.bufs();
    // Three data packets to spoke 2, then one Traffic Indication to spoke 1.
    assert_eq!(sent.len(), 4);
    for d in &sent[..3] {
        assert_eq!(d.addr, Some(SocketAddr::new(nbma(SPOKE2), 4754)));
        let inner = &d.packet()[8..];
        assert_eq!(inner[8], 63, "TTL decremented");
        assert_eq!(dmvpn_testkit::inet_checksum(&inner[..20]), 0);
        assert_eq!(inner[20..], packet[20..]);
    }
    let ti = &sent[3];
    assert_eq!(ti.addr, Some(SocketAddr::new(nbma(SPOKE1), 4754)));
    assert_eq!(&ti.packet()[..4], &[0x20, 0, 0x20, 0x01]);
    // NHRP fixed header: ar$op.type 8 = Traffic Indication (Cisco).
    assert_eq!(ti.packet()[8 + 17], 8);
    let nhrp = hub.fwd.engine().counters();
    assert_eq!(nhrp.sent.get(Operation::TrafficIndication), 1);
    assert_eq!(nhrp.redirects_suppressed, 2);
    hub.out.clear();

    // A packet for spoke 1's own LAN from spoke 1 would go back where it came from.
    let back = udp_packet([192, 168, 2, 10], [192, 168, 2, 99], 64);
    datagram(&mut rx, nbma(SPOKE1), 4754, &gre(0x0800, &back));
    // TTL 1 cannot be forwarded.
    let mut dying = udp_packet([192, 168, 2, 10], [192, 168, 3, 5], 64);
    dying[8] = 1;
    dying[10..12].copy_from_slice(&[0, 0]);
    let sum = dmvpn_testkit::inet_checksum(&dying[..20]);
    dying[10..12].copy_from_slice(&sum.to_be_bytes());
    datagram(&mut rx, nbma(SPOKE1), 4754, &gre(0x0800, &dying));
    // The hub's own LAN goes to its TUN device.
    let mine = udp_packet([192, 168, 2, 10], [192, 168, 1, 7], 64);
    datagram(&mut rx, nbma(SPOKE1), 4754, &gre(0x0800, &mine));
    hub.fwd.inbound(now, &mut rx, &mut hub.out);
    assert_eq!(hub.fwd.counters().dropped(DropReason::Loop), 1);
    assert_eq!(hub.fwd.counters().dropped(DropReason::Ttl), 1);
    assert_eq!(hub.out.tun.len(), 1);
    assert_eq!(hub.out.tun.bufs()[0].packet(), &mine[..]);
}

#[test]
fn multicast_is_replicated_to_registered_peers() {
    let mut sim = registered();
    let now = sim.now;
    let hub = &mut sim.routers[HUB];
    let mut tx = PacketBatch::new(8, 2048);
    // An OSPF hello (224.0.0.5) and a broadcast on the tunnel subnet.
    for dst in [[224, 0, 0, 5], [10, 1, 1, 255]] {
        let b = tx.push_empty();
        b.load(&udp_packet([10, 1, 1, 1], dst, 40));
    }
    hub.fwd.outbound(now, &mut tx, &mut hub.out);
    let mut to: Vec<IpAddr> = hub
        .out
        .udp
        .bufs()
        .iter()
        .map(|b| b.addr.unwrap().ip())
        .collect();
    to.sort();
    assert_eq!(to, [nbma(SPOKE1), nbma(SPOKE1), nbma(SPOKE2), nbma(SPOKE2)]);
    assert_eq!(hub.fwd.counters().multicast_copies, 4);
}

fn spoke_engine(now: Instant) -> Engine {
    Engine::new(common::nhrp_config(SPOKE1), Box::new(SplitMix64(3)), now).unwrap()
}

#[test]
fn packets_wait_for_the_sa_in_a_bounded_queue() {
    let now = Instant::now();
    let config = ForwarderConfig {
        queue_limit: 32,
        ..common::forwarder_config(SPOKE1)
    };
    let esp = EspInUdp::new(EspMode::Transport, nbma(SPOKE1));
    let mut fwd = Forwarder::new(config, spoke_engine(now), esp).unwrap();
    let mut out = Output::new(64, 2048);
    // The registration request waits first.
    fwd.handle_timeout(now, &mut out);
    assert_eq!(fwd.pending_len(nbma(HUB)), 1);
    let mut tx = PacketBatch::new(64, 2048);
    for i in 0..40u8 {
        tx.push_empty()
            .load(&udp_packet([192, 168, 2, 10], [192, 168, 1, i], 64));
    }
    fwd.outbound(now, &mut tx, &mut out);
    assert!(out.udp.is_empty());
    assert_eq!(fwd.pending_len(nbma(HUB)), 32);
    assert_eq!(fwd.counters().dropped(DropReason::QueueFull), 9);
    let asked: Vec<Event> = std::iter::from_fn(|| fwd.poll_event())
        .filter(|e| matches!(e, Event::NeedSa { .. }))
        .collect();
    assert_eq!(asked, [Event::NeedSa { peer: nbma(HUB) }]);

    // The SA arrives: the 32 go out in order, registration first.
    let tx_sa = OutboundSa::new(common::sa_config(0x2000), &common::sa_key(1, 0), now).unwrap();
    let rx_sa = InboundSa::new(common::sa_config(0x2001), &common::sa_key(0, 1), now).unwrap();
    let endpoint = SocketAddr::new(nbma(HUB), 4500);
    fwd.install_sa(now, nbma(HUB), endpoint, tx_sa, rx_sa, &mut out)
        .unwrap();
    assert_eq!(out.udp.len(), 32);
    assert_eq!(fwd.pending_len(nbma(HUB)), 0);
    let seqs: Vec<u32> = out
        .udp
        .bufs()
        .iter()
        .map(|b| u32::from_be_bytes(b.packet()[4..8].try_into().unwrap()))
        .collect();
    assert_eq!(seqs, (1..=32).collect::<Vec<u32>>());
    assert!(out.udp.bufs().iter().all(|b| b.addr == Some(endpoint)));
    assert_eq!(fwd.peer_counters().get(nbma(HUB)).tx_packets, 32);
    // A duplicate SPI is refused and changes nothing.
    let again = OutboundSa::new(common::sa_config(0x2000), &common::sa_key(1, 0), now).unwrap();
    let again_rx = InboundSa::new(common::sa_config(0x2003), &common::sa_key(0, 1), now).unwrap();
    assert!(
        fwd.install_sa(now, nbma(HUB), endpoint, again, again_rx, &mut out)
            .is_err()
    );
    assert_eq!(fwd.protection().peer_sas(nbma(HUB)).unwrap().1, 0x2000);

    // Dropping a queue counts its packets; the next packet asks again.
    assert!(fwd.remove_sa(nbma(HUB)));
    out.clear();
    tx.push_empty()
        .load(&udp_packet([192, 168, 2, 10], [192, 168, 1, 1], 64));
    fwd.outbound(now, &mut tx, &mut out);
    assert_eq!(fwd.pending_len(nbma(HUB)), 1);
    fwd.drop_pending(nbma(HUB));
    assert_eq!(fwd.counters().dropped(DropReason::NoSa), 1);
    assert_eq!(fwd.poll_event(), Some(Event::NeedSa { peer: nbma(HUB) }));
}

#[test]
fn inbound_drops_are_counted_by_reason() {
    let mut sim = Sim::esp();
    for _ in 0..20 {
        sim.step();
    }
    // Capture one ESP datagram from spoke 1 to the hub, then replay and corrupt it.
    let now = sim.now;
    let spoke = &mut sim.routers[SPOKE1];
    let mut tx = PacketBatch::new(4, 2048);
    tx.push_empty()
        .load(&udp_packet([192, 168, 2, 10], [192, 168, 1, 7], 64));
    spoke.fwd.outbound(now, &mut tx, &mut spoke.out);
    let esp = spoke.out.udp.bufs()[0].packet().to_vec();
    spoke.out.clear();

    let hub = &mut sim.routers[HUB];
    let mut rx = PacketBatch::new(8, 2048);
    let from = nbma(SPOKE1);
    datagram(&mut rx, from, 4500, &esp);
    datagram(&mut rx, from, 4500, &esp);
    let mut flipped = esp.clone();
    *flipped.last_mut().unwrap() ^= 1;
    flipped[7] = 0x7f;
    datagram(&mut rx, from, 4500, &flipped);
    let mut unknown = esp.clone();
    unknown[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    datagram(&mut rx, from, 4500, &unknown);
    datagram(&mut rx, from, 4500, &[1, 2]);
    // IKE behind the non-ESP marker and a NAT keepalive go to the IKE engine.
    datagram(&mut rx, from, 4500, &[0, 0, 0, 0, 0x11, 0x22]);
    datagram(&mut rx, from, 4500, &[0xff]);
    hub.fwd.inbound(now, &mut rx, &mut hub.out);
    let c = hub.fwd.counters();
    assert_eq!(hub.out.tun.len(), 1);
    assert_eq!(c.dropped(DropReason::Replay), 1);
    assert_eq!(c.dropped(DropReason::Auth), 1);
    assert_eq!(c.dropped(DropReason::NoSa), 1);
    assert_eq!(c.dropped(DropReason::Malformed), 1);
    assert_eq!(c.ike_rx, 2);
    let ike: Vec<Vec<u8>> = std::iter::from_fn(|| hub.fwd.poll_event())
        .filter_map(|e| match e {
            Event::IkeDatagram { from: f, datagram } if f.ip() == from => Some(datagram),
            _ => None,
        })
        .collect();
    assert_eq!(ike, [vec![0, 0, 0, 0, 0x11, 0x22], vec![0xff]]);

    // Plaintext: a wrong key, an unknown protocol and a broken inner packet.
    let mut sim = registered();
    let hub = &mut sim.routers[HUB];
    let mut wrong_key = gre(0x0800, &udp_packet([192, 168, 2, 1], [192, 168, 1, 1], 8));
    wrong_key[7] = 99;
    datagram(&mut rx, from, 4754, &wrong_key);
    datagram(&mut rx, from, 4754, &gre(0x6558, &[0; 14]));
    datagram(&mut rx, from, 4754, &gre(0x0800, &[0x45, 0, 0, 99]));
    hub.fwd.inbound(sim.now, &mut rx, &mut hub.out);
    let c = hub.fwd.counters();
    assert_eq!(c.dropped(DropReason::KeyMismatch), 1);
    assert_eq!(c.dropped(DropReason::UnknownProtocol), 1);
    assert_eq!(c.dropped(DropReason::Malformed), 1);
    assert!(hub.out.is_empty_both());
}

/// A TCP SYN from 192.168.2.10 to `dst` with MSS 1460, its checksum computed here.
fn syn(dst: [u8; 4]) -> Vec<u8> {
    let src = [192, 168, 2, 10];
    let mut tcp = vec![
        0xc3, 0x50, 0x00, 0x16, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0,
    ];
    tcp.extend_from_slice(&[0, 0, 0, 0, 2, 4, 0x05, 0xb4]);
    let sum = dmvpn_testkit::inet_checksum(&pseudo(src, dst, &tcp));
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    dmvpn_testkit::ipv4(Ipv4Addr::from(src), Ipv4Addr::from(dst), 6, &tcp)
}

fn pseudo(src: [u8; 4], dst: [u8; 4], tcp: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&[0, 6, 0, tcp.len() as u8]);
    p.extend_from_slice(tcp);
    p
}

#[test]
fn mss_is_clamped_both_ways_and_checksums_hold() {
    let mut sim = registered();
    let now = sim.now;
    let mut judged = Vec::new();
    // Outbound at spoke 1 (MTU 1400: MSS 1360).
    let spoke = &mut sim.routers[SPOKE1];
    let mut tx = PacketBatch::new(4, 2048);
    tx.push_empty().load(&syn([192, 168, 3, 5]));
    spoke.fwd.outbound(now, &mut tx, &mut spoke.out);
    let inner = spoke.out.udp.bufs()[0].packet()[8..].to_vec();
    assert_eq!(spoke.fwd.counters().mss_clamped, 1);
    judged.push(inner);
    spoke.out.clear();
    // Inbound at spoke 2, from a peer that did not clamp.
    let spoke2 = &mut sim.routers[SPOKE2];
    let mut rx = PacketBatch::new(4, 2048);
    datagram(
        &mut rx,
        nbma(HUB),
        4754,
        &gre(0x0800, &syn([192, 168, 3, 5])),
    );
    spoke2.fwd.inbound(now, &mut rx, &mut spoke2.out);
    judged.push(spoke2.out.tun.bufs()[0].packet().to_vec());
    for p in &judged {
        let tcp = &p[20..];
        assert_eq!(&tcp[20..24], &[2, 4, 0x05, 0x50], "MSS 1360");
        let src: [u8; 4] = p[12..16].try_into().unwrap();
        let dst: [u8; 4] = p[16..20].try_into().unwrap();
        assert_eq!(dmvpn_testkit::inet_checksum(&pseudo(src, dst, tcp)), 0);
    }
    if dmvpn_testkit::tshark_available() {
        let pcap = dmvpn_testkit::write_pcap("dataplane-mss", &judged);
        let tcp_checksum = ["-o".to_string(), "tcp.check_checksum:TRUE".to_string()];
        dmvpn_testkit::assert_tshark_clean_with(&pcap, &tcp_checksum);
        let rows = dmvpn_testkit::tshark_fields_with(
            &pcap,
            &tcp_checksum,
            &["tcp.options.mss_val", "tcp.checksum.status"],
        );
        assert_eq!(rows, vec![vec!["1360".to_string(), "1".to_string()]; 2]);
        std::fs::remove_file(pcap).unwrap();
    }
}

#[test]
fn too_big_packets_get_icmp_errors_judged_by_tshark() {
    let mut sim = registered();
    let now = sim.now;
    let spoke = &mut sim.routers[SPOKE1];
    let mut tx = PacketBatch::new(4, 2048);
    let big = udp_packet([192, 168, 2, 10], [192, 168, 3, 5], 1472);
    tx.push_empty().load(&big);
    // Without DF the underlay fragments: it goes.
    let mut no_df = big.clone();
    no_df[6] = 0;
    no_df[10..12].copy_from_slice(&[0, 0]);
    let sum = dmvpn_testkit::inet_checksum(&no_df[..20]);
    no_df[10..12].copy_from_slice(&sum.to_be_bytes());
    tx.push_empty().load(&no_df);
    spoke.fwd.outbound(now, &mut tx, &mut spoke.out);
    assert_eq!(spoke.out.udp.len(), 1);
    assert_eq!(spoke.fwd.counters().dropped(DropReason::TooBig), 1);
    let icmp4 = spoke.out.tun.bufs()[0].packet().to_vec();
    assert_eq!(&icmp4[12..16], &[10, 1, 1, 2], "from our tunnel address");
    assert_eq!(&icmp4[16..20], &[192, 168, 2, 10]);

    // IPv6 over an IPv6 tunnel: packet too big.
    let now = Instant::now();
    let a = |s: &str| -> IpAddr { s.parse().unwrap() };
    let mut c = Config::new(Role::Spoke, a("fd00::2"), 64, nbma(SPOKE1));
    c.nhs.push(NhsConfig {
        tunnel: a("fd00::1"),
        nbma: nbma(HUB),
        priority: 0,
    });
    let engine = Engine::new(c, Box::new(SplitMix64(5)), now).unwrap();
    let config = ForwarderConfig {
        static_routes: vec![StaticRoute {
            prefix: Prefix::new(a("fd00:3::"), 48).unwrap(),
            via: a("fd00::1"),
        }],
        ..ForwarderConfig::default()
    };
    let mut fwd = Forwarder::new(config, engine, GreInUdp::default()).unwrap();
    let mut out = Output::new(4, 2048);
    let src: Ipv6Addr = "fd00:2::10".parse().unwrap();
    let dst: Ipv6Addr = "fd00:3::5".parse().unwrap();
    let udp = dmvpn_testkit::udp6(src, dst, 40000, 5001, &[0x5a; 1452]);
    tx.push_empty().load(&udp);
    fwd.outbound(now, &mut tx, &mut out);
    assert_eq!(fwd.counters().dropped(DropReason::TooBig), 1);
    let icmp6 = out.tun.bufs()[0].packet().to_vec();
    assert_eq!(icmp6.len(), 1280);
    assert_eq!(fwd.counters().icmp_sent, 1);

    if dmvpn_testkit::tshark_available() {
        let pcap = dmvpn_testkit::write_pcap("dataplane-icmp", &[icmp4, icmp6]);
        dmvpn_testkit::assert_tshark_clean(&pcap);
        let rows = dmvpn_testkit::tshark_fields(
            &pcap,
            &[
                "icmp.type",
                "icmp.code",
                "icmp.mtu",
                "icmp.checksum.status",
                "icmpv6.type",
                "icmpv6.mtu",
                "icmpv6.checksum.status",
            ],
        );
        assert_eq!(rows[0][..4], ["3", "4", "1400", "1"]);
        assert_eq!(rows[1][4..], ["2", "1400", "1"]);
        std::fs::remove_file(pcap).unwrap();
    }
}
