//! The Linux implementations for real, as root, inside a network namespace this test makes
//! (`ip netns add`, the test body re-run in it with `ip netns exec`, the namespace deleted
//! afterwards): a tun-rs TUN device and a quinn-udp socket move one packet each way through
//! a forwarder (GRE-in-UDP to a plain UDP socket playing the peer on 198.18.0.2), and
//! rtnetlink routes with the agent's protocol marker are reconciled in and out. Without
//! root it says so and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use dmvpn_dataplane::os::linux::{
    DEFAULT_ROUTE_PROTOCOL, LinuxRoutes, LinuxTun, LinuxUdp, MAIN_TABLE,
};
use dmvpn_dataplane::os::{OsRoute, RouteTable, TunDevice, UdpEndpoint, reconcile};
use dmvpn_dataplane::{Forwarder, ForwarderConfig, GreInUdp, Output, PacketBatch};
use dmvpn_nhrp::{Config, Engine, NhsConfig, Prefix, Role, SplitMix64};

use common::netns::{Netns, ip, is_root};

const CHILD: &str = "DMVPN_DATAPLANE_NETNS_CHILD";

#[test]
fn tun_and_udp_move_a_packet_each_way_in_a_namespace() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    if !is_root() {
        eprintln!("SKIPPED: needs root to create a network namespace and a TUN device");
        return;
    }
    let ns = Netns(format!("dmvpn-dp-{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args([
            "--exact",
            "tun_and_udp_move_a_packet_each_way_in_a_namespace",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// The body, inside the namespace.
fn child() {
    ip(&["link", "set", "lo", "up"]);
    ip(&["addr", "add", "198.18.0.1/32", "dev", "lo"]);
    ip(&["addr", "add", "198.18.0.2/32", "dev", "lo"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(body());
}

async fn body() {
    let a = |s: &str| -> IpAddr { s.parse().unwrap() };
    let now = Instant::now();
    let mut tun = LinuxTun::create("dmvpn-t0", a("10.9.0.1"), 24, 1400).unwrap();
    let ifindex = tun.if_index().unwrap();
    let mut udp = LinuxUdp::bind("198.18.0.1:4754".parse().unwrap()).unwrap();
    assert_eq!(udp.local_addr().unwrap().port(), 4754);
    let peer = UdpSocket::bind("198.18.0.2:4754").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    let mut c = Config::new(Role::Spoke, a("10.9.0.1"), 24, a("198.18.0.1"));
    c.nhs.push(NhsConfig {
        tunnel: a("10.9.0.2"),
        nbma: a("198.18.0.2"),
        priority: 0,
    });
    let engine = Engine::new(c, Box::new(SplitMix64(1)), now).unwrap();
    let mut fwd = Forwarder::new(ForwarderConfig::default(), engine, GreInUdp::default()).unwrap();
    let mut out = Output::new(32, 2048);
    let mut batch = PacketBatch::new(32, 2048);

    // Out: an application on 10.9.0.1 sends to 10.9.0.2; the kernel routes it into the TUN
    // device (IPv6 router solicitations may come first).
    let app = UdpSocket::bind("10.9.0.1:5000").unwrap();
    app.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    app.send_to(b"ping", "10.9.0.2:6000").unwrap();
    let mut got = None;
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        let n = tokio::time::timeout(Duration::from_secs(5), tun.recv_batch(&mut batch))
            .await
            .expect("a packet from the TUN device")
            .unwrap();
        assert!(n >= 1);
        fwd.outbound(now, &mut batch, &mut out);
        fwd.handle_timeout(now, &mut out);
        let sent = udp.send_batch(&out.udp).await.unwrap();
        assert_eq!(sent, out.udp.len());
        out.clear();
        // The peer sees the NHRP registration and, in GRE, our packet.
        while let Ok((len, from)) = peer.recv_from(&mut buf) {
            assert_eq!(from, "198.18.0.1:4754".parse::<SocketAddr>().unwrap());
            let g = &buf[..len];
            if g[2..4] == [0x08, 0x00] {
                got = Some(g[4..].to_vec());
                break;
            }
        }
        if got.is_some() {
            break;
        }
    }
    let inner = got.expect("the packet crossed in GRE-in-UDP");
    assert_eq!(&inner[12..20], &[10, 9, 0, 1, 10, 9, 0, 2]);
    assert_eq!(&inner[28..], b"ping");

    // Back: the peer answers in GRE-in-UDP; the forwarder writes it to the TUN device and
    // the kernel delivers it to the application.
    let reply = dmvpn_testkit::ipv4(
        Ipv4Addr::new(10, 9, 0, 2),
        Ipv4Addr::new(10, 9, 0, 1),
        17,
        &dmvpn_testkit::udp(6000, 5000, b"pong"),
    );
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&reply);
    peer.send_to(&gre, "198.18.0.1:4754").unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), udp.recv_batch(&mut batch))
        .await
        .expect("a datagram")
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        batch.bufs()[0].addr,
        Some("198.18.0.2:4754".parse().unwrap())
    );
    fwd.inbound(now, &mut batch, &mut out);
    assert_eq!(out.tun.len(), 1);
    assert_eq!(tun.send_batch(&out.tun).await.unwrap(), 1);
    out.clear();
    let (len, from) = tokio::task::spawn_blocking(move || {
        let mut b = [0u8; 64];
        let (len, from) = app.recv_from(&mut b).unwrap();
        assert_eq!(&b[..len], b"pong");
        (len, from)
    })
    .await
    .unwrap();
    assert_eq!((len, from), (4, "10.9.0.2:6000".parse().unwrap()));
    assert_eq!(fwd.counters().dropped_total(), 0);

    // Routes: a leftover of an "earlier run", reconciled away; ours added, then removed.
    let mut routes = LinuxRoutes::connect(DEFAULT_ROUTE_PROTOCOL, MAIN_TABLE).unwrap();
    ip(&[
        "route",
        "add",
        "192.168.77.0/24",
        "dev",
        "dmvpn-t0",
        "proto",
        "212",
    ]);
    ip(&["route", "add", "192.168.78.0/24", "dev", "dmvpn-t0"]);
    let want = OsRoute {
        prefix: Prefix::new(a("192.168.50.0"), 24).unwrap(),
        ifindex,
        via: None,
    };
    let done = reconcile(&mut routes, &BTreeSet::from([want]))
        .await
        .unwrap();
    assert_eq!(done.added, [want]);
    assert_eq!(done.removed.len(), 1);
    assert_eq!(
        done.removed[0].prefix,
        Prefix::new(a("192.168.77.0"), 24).unwrap()
    );
    assert_eq!(routes.list().await.unwrap(), [want]);
    let shown = Command::new("ip")
        .args(["route", "show", "proto", "212"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout).trim(),
        "192.168.50.0/24 dev dmvpn-t0 scope link"
    );
    let again = reconcile(&mut routes, &BTreeSet::from([want]))
        .await
        .unwrap();
    assert!(again.added.is_empty() && again.removed.is_empty());
    reconcile(&mut routes, &BTreeSet::new()).await.unwrap();
    assert!(routes.list().await.unwrap().is_empty());
    // The unmarked route is not ours and stays.
    let all = Command::new("ip").args(["route", "show"]).output().unwrap();
    assert!(String::from_utf8_lossy(&all.stdout).contains("192.168.78.0/24"));

    // A route agent's route via a gateway, under its own marker: listed with its gateway,
    // invisible to the tunnel's table, removed by its reconciler.
    let mut agent_routes = LinuxRoutes::connect(213, MAIN_TABLE).unwrap();
    let via = OsRoute {
        prefix: Prefix::new(a("192.168.60.0"), 24).unwrap(),
        ifindex: 0,
        via: Some(a("198.18.0.2")),
    };
    let done = reconcile(&mut agent_routes, &BTreeSet::from([via]))
        .await
        .unwrap();
    assert_eq!(done.added, [via]);
    assert_eq!(agent_routes.list().await.unwrap(), [via]);
    assert!(routes.list().await.unwrap().is_empty());
    let shown = Command::new("ip")
        .args(["route", "show", "proto", "213"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout).starts_with("192.168.60.0/24 via 198.18.0.2 "),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
    let again = reconcile(&mut agent_routes, &BTreeSet::from([via]))
        .await
        .unwrap();
    assert!(again.added.is_empty() && again.removed.is_empty());
    reconcile(&mut agent_routes, &BTreeSet::new())
        .await
        .unwrap();
    assert!(agent_routes.list().await.unwrap().is_empty());
}
