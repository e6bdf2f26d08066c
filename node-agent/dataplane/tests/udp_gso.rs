//! The Linux UDP endpoint's batched sends on loopback (no root needed): runs of equal-sized
//! datagrams leave as UDP GSO sends (`UDP_SEGMENT`), and both a receiving agent (quinn-udp
//! with UDP GRO, split back by `recv_batch`) and a plain socket get every datagram, whole
//! and in order.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use dmvpn_dataplane::PacketBatch;
use dmvpn_dataplane::os::UdpEndpoint;
use dmvpn_dataplane::os::linux::LinuxUdp;

/// Datagram `i` of a test batch: 1200 bytes (the last one of each run 300) with its number
/// in every byte, so that a lost, cut or reordered datagram shows.
fn datagram(i: usize, last: bool) -> Vec<u8> {
    vec![u8::try_from(i).unwrap(); if last { 300 } else { 1200 }]
}

/// A batch of 30 datagrams: 20 to `agent` (short ones at 12 and 19, each closing a GSO
/// run), then 10 to `plain` (a short one last); returns it and what each should receive.
fn batch(agent: SocketAddr, plain: SocketAddr) -> (PacketBatch, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut batch = PacketBatch::new(64, 2048);
    let (mut to_agent, mut to_plain) = (Vec::new(), Vec::new());
    for i in 0..30 {
        let (dest, short) = if i < 20 {
            (agent, i == 12 || i == 19)
        } else {
            (plain, i == 29)
        };
        let d = datagram(i, short);
        let buf = batch.push_empty();
        assert!(buf.load(&d));
        buf.addr = Some(dest);
        if i < 20 {
            to_agent.push(d);
        } else {
            to_plain.push(d);
        }
    }
    (batch, to_agent, to_plain)
}

#[tokio::test(flavor = "current_thread")]
async fn gso_runs_arrive_whole_and_in_order() {
    let mut sender = LinuxUdp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut agent = LinuxUdp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (out, to_agent, to_plain) = batch(agent.local_addr().unwrap(), plain.local_addr().unwrap());
    assert_eq!(sender.send_batch(&out).await.unwrap(), 30);

    let from = sender.local_addr().unwrap();
    let mut got = Vec::new();
    let mut batch = PacketBatch::new(64, 9216);
    while got.len() < to_agent.len() {
        tokio::time::timeout(Duration::from_secs(5), agent.recv_batch(&mut batch))
            .await
            .expect("the agent receives every datagram")
            .unwrap();
        for b in batch.bufs() {
            assert_eq!(b.addr, Some(from));
            got.push(b.packet().to_vec());
        }
    }
    assert_eq!(got, to_agent);

    let mut buf = [0u8; 65536];
    for want in &to_plain {
        let (len, src) = plain.recv_from(&mut buf).unwrap();
        assert_eq!(src, from);
        assert_eq!(&buf[..len], &want[..]);
    }
}
