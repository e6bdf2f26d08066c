//! The steady-state packet path allocates nothing: a counting global allocator watches
//! 100 batches of 32 packets go from spoke 1's TUN side through ESP sealing, across, and
//! through the hub's ESP opening to its TUN side, after a warm-up that sizes the batches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{HUB, SPOKE1, Sim, udp_packet};
use dmvpn_dataplane::Protection;

// dhat's allocator counts every allocation (a block) in testing mode; the workspace forbids
// the unsafe code a hand-written counting allocator would need.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn allocations() -> u64 {
    dhat::HeapStats::get().total_blocks
}

#[test]
fn steady_state_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut sim = Sim::esp();
    for _ in 0..50 {
        sim.step();
    }
    assert!(
        sim.routers[HUB]
            .fwd
            .protection()
            .ready(common::nbma(SPOKE1))
    );
    let packet = udp_packet([192, 168, 2, 10], [192, 168, 1, 7], 1400 - 28);
    let now = sim.now;
    let (hub, rest) = sim.routers.split_at_mut(1);
    let (hub, spoke) = (&mut hub[HUB], &mut rest[0]);
    let mut allocated = 0;
    let mut round = |count: bool| {
        for _ in 0..32 {
            assert!(spoke.tun_batch.push_empty().load(&packet));
        }
        let before = allocations();
        spoke
            .fwd
            .outbound(now, &mut spoke.tun_batch, &mut spoke.out);
        for i in 0..spoke.out.udp.len() {
            let buf = &mut spoke.out.udp.bufs_mut()[i];
            buf.addr = Some(std::net::SocketAddr::new(common::nbma(SPOKE1), 4500));
            hub.udp_batch.push_swap(buf);
        }
        spoke.out.clear();
        hub.fwd.inbound(now, &mut hub.udp_batch, &mut hub.out);
        if count {
            allocated += allocations() - before;
        }
        assert_eq!(hub.out.tun.len(), 32);
        hub.out.clear();
    };
    for _ in 0..3 {
        round(false);
    }
    for _ in 0..100 {
        round(true);
    }
    assert_eq!(allocated, 0);
    assert_eq!(hub.fwd.counters().tun_tx, 103 * 32);
    // The counter has teeth: an allocation is seen.
    let before = allocations();
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(16));
    assert_eq!(allocations() - before, 1);
    drop(v);
}
