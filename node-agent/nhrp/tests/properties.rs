//! Properties over arbitrary input: a hub and a spoke fed any sequence of packets (random
//! bytes, or packets they really exchange with random bytes changed and the checksum
//! fixed) and timeouts never panic, count every packet they drop, and keep no cache entry
//! past its holding time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::time::Duration;

use dmvpn_nhrp::Engine;
use dmvpn_wire::nhrp::Packet;
use proptest::prelude::*;
use sim::{Impairments, check_holdtimes, seed};

/// Every packet of a short seed-topology run with authentication and phase 3.
fn samples() -> &'static Vec<Vec<u8>> {
    static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut sim = seed::topology(61, Impairments::perfect(), Some(b"s3cr3t"));
        sim.captured = Some(Vec::new());
        sim.run_for(Duration::from_secs(1), |_| {});
        sim.command(0, |hub, now| {
            hub.traffic_to(
                now,
                "192.168.2.1".parse().unwrap(),
                "192.168.3.1".parse().unwrap(),
            );
        });
        sim.run_for(Duration::from_secs(1), |_| {});
        sim.captured
            .take()
            .unwrap()
            .into_iter()
            .map(|c| c.2)
            .collect()
    })
}

#[derive(Debug, Clone)]
enum Op {
    /// A sample packet with bytes changed (at, value) and the checksum fixed or not.
    Mutated {
        sample: usize,
        changes: Vec<(usize, u8)>,
        fix_checksum: bool,
        to_spoke: bool,
    },
    /// Random bytes.
    Raw { bytes: Vec<u8>, to_spoke: bool },
    /// Time passes.
    Wait { millis: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4), any::<bool>(), any::<bool>())
            .prop_map(|(sample, changes, fix_checksum, to_spoke)| Op::Mutated { sample, changes, fix_checksum, to_spoke }),
        1 => (proptest::collection::vec(any::<u8>(), 0..120), any::<bool>())
            .prop_map(|(bytes, to_spoke)| Op::Raw { bytes, to_spoke }),
        1 => (0u64..20_000_000).prop_map(|millis| Op::Wait { millis }),
    ]
}

fn drain(e: &mut Engine) {
    while e.poll_transmit().is_some() {}
    while e.poll_event().is_some() {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn engines_survive_any_input(ops in proptest::collection::vec(op(), 1..40)) {
        let samples = samples();
        let mut sim = seed::topology(62, Impairments::perfect(), Some(b"s3cr3t"));
        sim.run_for(Duration::from_secs(1), |_| {});
        let from = Ipv4Addr::new(198, 18, 0, 3).into();
        for op in ops {
            let (bytes, to_spoke) = match op {
                Op::Mutated { sample, changes, fix_checksum, to_spoke } => {
                    let mut b = samples[sample % samples.len()].clone();
                    for (at, v) in changes {
                        let at = at % b.len();
                        b[at] = v;
                    }
                    if fix_checksum && let Ok(mut p) = Packet::new_checked(&mut b[..]) {
                        p.fill_checksum();
                    }
                    (b, to_spoke)
                }
                Op::Raw { bytes, to_spoke } => (bytes, to_spoke),
                Op::Wait { millis } => {
                    sim.run_for(Duration::from_millis(millis), check_holdtimes);
                    continue;
                }
            };
            let node = usize::from(to_spoke);
            let now = sim.now;
            let e = &mut sim.nodes[node].engine;
            let before = e.counters().dropped_total() + e.counters().received.total();
            e.handle_packet(now, from, &bytes);
            let after = e.counters().dropped_total() + e.counters().received.total();
            // Every packet is either taken in or dropped and counted.
            prop_assert!(after > before);
            drain(e);
            check_holdtimes(&sim);
        }
    }
}
