//! The Linux UDP endpoint's receive side under UDP GRO on loopback (no root needed): a
//! sender's UDP GSO runs of 48 datagrams (57 KB) reach a socket with UDP GRO whole, as one
//! message each, far more than a batch buffer holds; `recv_batch` hands up every datagram,
//! whole and in order, over batches smaller than a run, and drops none; a datagram longer
//! than a batch buffer is dropped and counted, never handed up cut.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use dmvpn_dataplane::PacketBatch;
use dmvpn_dataplane::os::linux::LinuxUdp;
use dmvpn_dataplane::os::{RecvDrops, UdpEndpoint};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};

/// Datagrams a run: more than the 8 of the agent's own GSO sends.
const SEGMENTS: usize = 48;
/// The size of each but the last datagram of a run (which is 500 bytes).
const SEGMENT: usize = 1200;
/// Runs sent before the receiver reads, so that several coalesced messages wait at once.
const RUNS: usize = 3;

/// Datagram `k` of run `r`: its number (run and index) in every byte, so that a lost,
/// cut or reordered datagram shows.
fn datagram(r: usize, k: usize) -> Vec<u8> {
    let len = if k + 1 == SEGMENTS { 500 } else { SEGMENT };
    vec![u8::try_from(r * SEGMENTS + k).unwrap(); len]
}

/// One GSO send of run `r` to `to`; false when the kernel refused GSO.
fn send_run(sock: &UdpSocket, state: &UdpSocketState, to: SocketAddr, r: usize) -> bool {
    let contents: Vec<u8> = (0..SEGMENTS).flat_map(|k| datagram(r, k)).collect();
    let transmit = Transmit {
        destination: to,
        ecn: None,
        contents: &contents,
        segment_size: Some(SEGMENT),
        src_ip: None,
    };
    state.try_send(sock.into(), &transmit).is_ok()
}

fn sender() -> (UdpSocket, UdpSocketState) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let state = UdpSocketState::new((&sock).into()).unwrap();
    assert!(
        state.max_gso_segments() >= SEGMENTS,
        "this kernel cannot send {SEGMENTS} segments with UDP GSO"
    );
    (sock, state)
}

#[test]
fn the_kernel_coalesces_a_gso_run_into_one_message() {
    // A quinn-udp socket (UDP GRO on) with a 64 KiB buffer: the run arrives as one message
    // of 57 KB with a 1200-byte stride, which a 9216-byte batch buffer would cut.
    let (tx, tx_state) = sender();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let rx_state = UdpSocketState::new((&rx).into()).unwrap();
    assert!(rx_state.gro_segments() > 1, "UDP GRO is off");
    assert!(send_run(&tx, &tx_state, rx.local_addr().unwrap(), 0));
    rx.set_nonblocking(false).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut meta = [RecvMeta::default()];
    let n = rx_state
        .recv((&rx).into(), &mut [IoSliceMut::new(&mut buf)], &mut meta)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(meta[0].len, (SEGMENTS - 1) * SEGMENT + 500);
    assert_eq!(meta[0].stride, SEGMENT);
}

#[tokio::test(flavor = "current_thread")]
async fn coalesced_runs_arrive_whole_and_in_order_over_small_batches() {
    let (tx, tx_state) = sender();
    let mut agent = LinuxUdp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let to = agent.local_addr().unwrap();
    let mut want = Vec::new();
    for r in 0..RUNS {
        assert!(send_run(&tx, &tx_state, to, r), "GSO send refused");
        want.extend((0..SEGMENTS).map(|k| datagram(r, k)));
    }

    // Batches of 20 buffers of the default capacity: each run spans three batches.
    let from = tx.local_addr().unwrap();
    let mut batch = PacketBatch::new(20, 9216);
    let mut got = Vec::new();
    while got.len() < want.len() {
        let n = tokio::time::timeout(Duration::from_secs(5), agent.recv_batch(&mut batch))
            .await
            .expect("the agent receives every datagram")
            .unwrap();
        assert!((1..=20).contains(&n));
        for b in batch.bufs() {
            assert_eq!(b.addr, Some(from));
            got.push(b.packet().to_vec());
        }
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "a datagram was lost, cut or reordered");
    assert_eq!(agent.drops(), RecvDrops::default());
}

#[tokio::test(flavor = "current_thread")]
async fn a_datagram_longer_than_a_buffer_is_dropped_and_counted() {
    // 3000 bytes into buffers of 2048: never handed up cut; the next one arrives.
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut agent = LinuxUdp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let to = agent.local_addr().unwrap();
    tx.send_to(&[1; 3000], to).unwrap();
    tx.send_to(&[2; 100], to).unwrap();
    let mut batch = PacketBatch::new(8, 2048);
    tokio::time::timeout(Duration::from_secs(5), agent.recv_batch(&mut batch))
        .await
        .unwrap()
        .unwrap();
    let got: Vec<Vec<u8>> = batch.bufs().iter().map(|b| b.packet().to_vec()).collect();
    assert_eq!(got, [vec![2; 100]]);
    assert_eq!(
        agent.drops(),
        RecvDrops {
            truncated: 0,
            oversize: 1
        }
    );
}
