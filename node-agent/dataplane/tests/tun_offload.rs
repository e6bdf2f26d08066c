//! TUN offloads for real, as root: two `LinuxTun` devices, one in each of two network
//! namespaces this test makes, relayed to each other batch by batch as a forwarder would
//! (read a batch from one, write it to the other), and a 24 MiB TCP transfer across them.
//!
//! - The data arrives whole (a hash of what was sent, answered by the receiver): the
//!   super-packets split on read and the segments coalesced on write carry correct lengths,
//!   sequence numbers and checksums, or the receiving kernel would drop them and the
//!   transfer stall.
//! - The kernel's own counters show the offloads at work: the sending device transmitted far
//!   fewer packets (GSO super-packets) than the relay read from it (segments), and the
//!   receiving device received far fewer (coalesced writes) than the relay wrote to it.
//! - The device's `gso_max_segs` is the most segments one read splits into.
//!
//! Without root it says so and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use dmvpn_dataplane::PacketBatch;
use dmvpn_dataplane::os::TunDevice;
use dmvpn_dataplane::os::linux::{LinuxTun, SEGMENTS};

use common::netns::{Netns, ip, is_root};

/// Set in the child that runs the relay in namespace A: "A B", the two namespaces.
const RELAY: &str = "DMVPN_TUN_OFFLOAD_RELAY";
/// Set in the child that receives the transfer in namespace B.
const RECEIVER: &str = "DMVPN_TUN_OFFLOAD_RECEIVER";
const TEST: &str = "a_tcp_transfer_crosses_split_and_coalesced";
const BYTES: usize = 24 << 20;
const PORT: u16 = 5001;

/// This test binary again, inside namespace `ns`, with `env` set.
fn rerun(ns: &str, env: (&str, &str)) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(env.0, env.1);
    c
}

/// FNV-1a, 64 bits: the receiver's answer about what it got.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// The bytes sent: not a repeating pattern, so that a misplaced segment changes the hash.
fn payload() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn counter(ns: &str, dev: &str, name: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat"])
        .arg(format!("/sys/class/net/{dev}/statistics/{name}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn a_tcp_transfer_crosses_split_and_coalesced() {
    if std::env::var_os(RECEIVER).is_some() {
        return receiver();
    }
    if let Ok(names) = std::env::var(RELAY) {
        let (a, b) = names.split_once(' ').unwrap();
        return relay(a, b);
    }
    if !is_root() {
        eprintln!("SKIPPED: needs root to create network namespaces and TUN devices");
        return;
    }
    let a = Netns(format!("dmvpn-off-a-{}", std::process::id()));
    let b = Netns(format!("dmvpn-off-b-{}", std::process::id()));
    ip(&["netns", "add", &a.0]);
    ip(&["netns", "add", &b.0]);
    let names = format!("{} {}", a.0, b.0);
    let out = rerun(&a.0, (RELAY, &names)).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "relay child failed:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
    println!("{text}");
}

/// In namespace B: takes one connection, reads to its end and answers the hash.
fn receiver() {
    let listener = TcpListener::bind(("10.9.1.2", PORT)).unwrap();
    println!("listening");
    let (mut conn, _) = listener.accept().unwrap();
    let mut hash = FNV_BASIS;
    let mut total = 0;
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash = fnv(hash, &buf[..n]);
        total += n;
    }
    conn.write_all(&hash.to_be_bytes()).unwrap();
    println!("received {total} bytes");
}

/// In namespace A: both devices, one moved to B, the relay between them and the sender.
fn relay(ns_a: &str, ns_b: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut ta = LinuxTun::create("dmvpn-oa", addr("10.9.1.1"), 24, 1400).unwrap();
        let mut tb = LinuxTun::create("dmvpn-ob", addr("10.9.1.3"), 24, 1400).unwrap();
        assert!(
            ta.offload() && tb.offload(),
            "the kernel refused TUN offloads"
        );
        ip(&["link", "set", "lo", "up"]);
        ip(&["link", "set", "dmvpn-ob", "netns", ns_b]);
        ip(&["-n", ns_b, "link", "set", "lo", "up"]);
        ip(&["-n", ns_b, "addr", "add", "10.9.1.2/24", "dev", "dmvpn-ob"]);
        ip(&["-n", ns_b, "link", "set", "dmvpn-ob", "up"]);
        let shown = Command::new("ip")
            .args(["-d", "link", "show", "dmvpn-oa"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.contains(&format!("gso_max_segs {SEGMENTS} ")),
            "{shown}"
        );

        let mut receiver = rerun(ns_b, (RECEIVER, "1"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let sender = std::thread::spawn(|| {
            let data = payload();
            let mut conn = None;
            for _ in 0..100 {
                match TcpStream::connect(("10.9.1.2", PORT)) {
                    Ok(c) => {
                        conn = Some(c);
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            let mut conn = conn.expect("the receiver listens");
            conn.set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            conn.write_all(&data).unwrap();
            conn.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = [0; 8];
            conn.read_exact(&mut answer).unwrap();
            (u64::from_be_bytes(answer), fnv(FNV_BASIS, &data))
        });

        // The relay, until the sender is done: a batch read from one device is written to
        // the other, as the forwarder hands a batch on.
        let mut from_a = PacketBatch::new(SEGMENTS, 2048);
        let mut from_b = PacketBatch::new(SEGMENTS, 2048);
        let (mut relayed_ab, mut relayed_ba) = (0_u64, 0_u64);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while !sender.is_finished() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the transfer stalled"
            );
            tokio::select! {
                r = ta.recv_batch(&mut from_a) => {
                    let n = r.unwrap();
                    relayed_ab += n as u64;
                    assert_eq!(tb.send_batch(&from_a).await.unwrap(), n);
                }
                r = tb.recv_batch(&mut from_b) => {
                    let n = r.unwrap();
                    relayed_ba += n as u64;
                    assert_eq!(ta.send_batch(&from_b).await.unwrap(), n);
                }
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        let (answered, sent) = sender.join().unwrap();
        assert_eq!(
            answered, sent,
            "the receiver got other bytes than were sent"
        );
        assert!(receiver.wait().unwrap().success());
        assert_eq!(ta.drops().unsplit + tb.drops().unsplit, 0);

        // The kernel's view: super-packets into A's device, coalesced ones out of B's.
        let sent_by_kernel = counter(ns_a, "dmvpn-oa", "tx_packets");
        let written_to_b = counter(ns_b, "dmvpn-ob", "rx_packets");
        let min_segments = (BYTES / 1400) as u64;
        println!(
            "A's kernel sent {sent_by_kernel} packets, split into {relayed_ab}; \
             {relayed_ab} written to B arrived as {written_to_b}; {relayed_ba} back"
        );
        assert!(relayed_ab >= min_segments, "{relayed_ab} segments");
        assert!(
            sent_by_kernel * 4 < relayed_ab,
            "no GSO: {sent_by_kernel} packets from the kernel, {relayed_ab} segments"
        );
        assert!(
            written_to_b * 4 < relayed_ab,
            "no GRO: {relayed_ab} packets written as {written_to_b}"
        );
    });
}
