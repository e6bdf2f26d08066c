//! `dmvpnctl show ...` and `clear ...` against an admin socket served by the library, as the
//! agent serves it: text tables, the JSON contract (issue 5, Operations), exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use dmvpn_agent::admin::{AdminCommand, AdminServer};
use dmvpn_agent::snapshot::{IkeSaInfo, IkeSaState, IpsecSaInfo, RouterSnapshot};
use dmvpn_dataplane::Counters;
use dmvpn_nhrp::show::{Dmvpn, DmvpnPeer, NhrpEntry, PeerState};
use dmvpn_nhrp::{EntryType, Prefix, Role};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The seed's hub (../shared/seeds/) with spoke 1 registered, underlay on 198.18.0.0/15.
fn hub() -> RouterSnapshot {
    RouterSnapshot {
        taken_at: Instant::now(),
        role: Role::Hub,
        tunnel_interface: "dmvpn0".into(),
        tunnel_address: ip("10.1.1.1"),
        tunnel_prefix_len: 24,
        tunnel_mtu: 1400,
        underlay_address: ip("198.18.0.1"),
        insecure: false,
        dmvpn: Dmvpn {
            role: Role::Hub,
            tunnel: ip("10.1.1.1"),
            nbma: ip("198.18.0.1"),
            network_id: 1,
            peers: vec![DmvpnPeer {
                nbma: ip("198.18.0.2"),
                tunnel: ip("10.1.1.2"),
                state: PeerState::Up,
                up_down: Duration::from_secs(65),
                kind: EntryType::Registered,
                nat: false,
                entries: 1,
            }],
        },
        nhrp: vec![NhrpEntry {
            prefix: Prefix::host(ip("10.1.1.2")),
            via: ip("10.1.1.2"),
            nbma: ip("198.18.0.2"),
            claimed_nbma: ip("198.18.0.2"),
            kind: EntryType::Registered,
            age: Duration::from_secs(65),
            expires_in: Some(Duration::from_secs(7135)),
            holdtime: 7200,
            unique: true,
            nat: false,
        }],
        nhs: Vec::new(),
        nhrp_traffic: dmvpn_nhrp::Counters::default(),
        dataplane: Counters::default(),
        peers: Vec::new(),
        ipsec_sas: vec![IpsecSaInfo {
            peer: ip("198.18.0.2"),
            endpoint: "198.18.0.2:4500".parse().unwrap(),
            inbound_spi: 0xFD59_AC3E,
            outbound_spi: 0x0000_6D83,
            packets_encaps: 215,
            packets_decaps: 204,
            replay_drops: 1,
            auth_failures: 2,
        }],
        ike_sas: vec![IkeSaInfo {
            peer: "198.18.0.2:4500".parse().unwrap(),
            spi_i: 1,
            spi_r: 2,
            state: IkeSaState::Established,
            uptime: Duration::from_secs(66),
        }],
        ike_failures: Default::default(),
        routes: Vec::new(),
        os_drops: Default::default(),
    }
}

/// An agent's admin socket on a thread of its own; the clear commands come out of the
/// returned channel.
struct Agent {
    socket: PathBuf,
    clears: std_mpsc::Receiver<AdminCommand>,
}

fn agent(test: &str) -> Agent {
    let dir = std::env::temp_dir().join(format!("dmvpnctl-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let socket = dir.join("agent.sock");
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let (clear_tx, clears) = std_mpsc::channel();
    let path = socket.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = AdminServer::bind(&path).unwrap();
            let (_snap_tx, snap_rx) = watch::channel(Arc::new(hub()));
            let (cmd_tx, mut cmd_rx) = mpsc::channel(4);
            tokio::spawn(server.run(snap_rx, cmd_tx));
            ready_tx.send(()).unwrap();
            while let Some(c) = cmd_rx.recv().await {
                clear_tx.send(c).unwrap();
            }
        });
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Agent { socket, clears }
}

fn dmvpnctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmvpnctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "dmvpnctl failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(socket: &Path, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&stdout(&dmvpnctl(socket, &all))).unwrap()
}

#[test]
fn shows_read_like_ios() {
    let a = agent("text");
    let t = stdout(&dmvpnctl(&a.socket, &["show", "dmvpn"]));
    assert!(
        t.contains("Interface: dmvpn0, IPv4 NHRP Details\nType:Hub, NHRP Peers:1,\n"),
        "{t}"
    );
    assert!(
        t.contains("     1 198.18.0.2             10.1.1.2    UP 00:01:05     D\n"),
        "{t}"
    );
    let t = stdout(&dmvpnctl(&a.socket, &["show", "ip", "nhrp"]));
    assert_eq!(
        t,
        "10.1.1.2/32 via 10.1.1.2\n   dmvpn0 created 00:01:05, expire 01:58:55\n   Type: dynamic, Flags: unique registered nhop\n   NBMA address: 198.18.0.2\n"
    );
    let t = stdout(&dmvpnctl(&a.socket, &["show", "crypto", "ipsec", "sa"]));
    assert!(t.contains("current outbound spi: 0x00006D83(28035)"), "{t}");
    let t = stdout(&dmvpnctl(&a.socket, &["show", "crypto", "session"]));
    assert!(
        t.contains("Session status: UP-ACTIVE\nPeer: 198.18.0.2 port 4500\n"),
        "{t}"
    );
    let t = stdout(&dmvpnctl(&a.socket, &["show", "crypto", "ikev2", "sa"]));
    assert!(t.contains("198.18.0.1:4500       198.18.0.2:4500"), "{t}");
    let t = stdout(&dmvpnctl(&a.socket, &["show", "ip", "nhrp", "traffic"]));
    assert!(t.starts_with("dmvpn0:\n   Sent: Total 0\n"), "{t}");
    let t = stdout(&dmvpnctl(&a.socket, &["show", "dmvpn", "detail"]));
    assert!(t.contains("Target Network"), "{t}");
}

#[test]
fn json_fields_are_the_contract() {
    let a = agent("json");
    let d = json(&a.socket, &["show", "dmvpn"]);
    let p = &d["peers"][0];
    assert_eq!(p["tunnelAddress"], "10.1.1.2");
    assert_eq!(p["nbmaAddress"], "198.18.0.2");
    assert_eq!(p["state"], "up");
    assert_eq!(p["type"], "dynamic");
    assert_eq!(p["uptimeSeconds"], 65);

    let n = json(&a.socket, &["show", "ip", "nhrp"]);
    let e = &n["entries"][0];
    assert_eq!(e["prefix"], "10.1.1.2/32");
    assert_eq!(e["tunnelAddress"], "10.1.1.2");
    assert_eq!(e["nbmaAddress"], "198.18.0.2");
    assert_eq!(e["type"], "dynamic");
    assert_eq!(e["expiresInSeconds"], 7135);

    let s = json(&a.socket, &["show", "crypto", "ipsec", "sa"]);
    let sa = &s["sas"][0];
    assert_eq!(sa["peer"], "198.18.0.2");
    assert_eq!(sa["inboundSpi"], "0xfd59ac3e");
    assert_eq!(sa["outboundSpi"], "0x00006d83");
    assert_eq!(sa["packetsEncaps"], 215);
    assert_eq!(sa["packetsDecaps"], 204);
    assert_eq!(sa["replayDrops"], 1);
    assert_eq!(sa["authFailures"], 2);

    for show in [
        &["show", "crypto", "session"][..],
        &["show", "crypto", "ikev2", "sa"],
        &["show", "ip", "nhrp", "traffic"],
        &["show", "dmvpn", "detail"],
        &["show", "ip", "nhrp", "detail"],
    ] {
        assert!(json(&a.socket, show).is_object(), "{show:?}");
    }
}

#[test]
fn clears_reach_the_driver() {
    let a = agent("clear");
    assert!(stdout(&dmvpnctl(&a.socket, &["clear", "ip", "nhrp"])).is_empty());
    assert_eq!(
        a.clears.recv_timeout(Duration::from_secs(10)).unwrap(),
        AdminCommand::ClearIpNhrp
    );
    assert!(stdout(&dmvpnctl(&a.socket, &["clear", "crypto", "sa"])).is_empty());
    assert_eq!(
        a.clears.recv_timeout(Duration::from_secs(10)).unwrap(),
        AdminCommand::ClearCryptoSa
    );
}

#[test]
fn errors_say_what_to_do() {
    let missing = std::env::temp_dir().join(format!("dmvpnctl-{}-none.sock", std::process::id()));
    let o = dmvpnctl(&missing, &["show", "dmvpn"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "dmvpnctl: cannot reach the agent at {}: is dmvpn-agent running? (--socket to choose another)\n",
            missing.display()
        )
    );
    // A typo is refused before the socket is tried, with the list of commands.
    let o = dmvpnctl(&missing, &["show", "bgp"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown command `show bgp`"), "{err}");
    assert!(err.contains("show crypto ipsec sa"), "{err}");
}
