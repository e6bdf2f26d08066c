//! An impairing relay for the labs, which have no netem: a userspace Ethernet bridge between
//! two TAP devices that drops a seeded share of the IP packets in each direction.
//!
//! The design is transparent: the relay forwards whole Ethernet frames, so addresses, ARP
//! and the NBMA addresses the agents see are unchanged; the lab puts the relay between a
//! site's underlay veth and the underlay bridge:
//!
//! ```text
//! spoke wan0 ── veth ── bridge imp ── TAP A ⇄ dmvpn-impair ⇄ TAP B ── bridge inet ── hub, ...
//! ```
//!
//! Only IPv4 and IPv6 frames are dropped (the underlay's packet loss); ARP passes, as a
//! lossy path still resolves its next hop eventually. Each direction draws from its own
//! SplitMix64 stream derived from the seed, so a seed gives the same drop pattern per
//! direction whatever the interleaving of the two.
//!
//! `dmvpn-impair TAP_A TAP_B LOSS_PERCENT SEED` attaches to TAP_A and TAP_B (create them
//! first with `ip tuntap add dev NAME mode tap` and enslave them to their bridges, or the
//! relay creates them, to be enslaved afterwards), prints `ready`, then once a second a line
//! `a->b passed=N dropped=N b->a passed=N dropped=N`. It runs until killed. Needs root.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tun_rs::{DeviceBuilder, Layer, SyncDevice};

/// The drop decision of one direction: a SplitMix64 stream and the loss in percent.
#[derive(Debug, Clone)]
pub struct Loss {
    state: u64,
    percent: u8,
}

/// SplitMix64's increment (Steele, Lea, Flood: "Fast splittable pseudorandom number
/// generators", OOPSLA 2014).
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl Loss {
    /// The decision stream for `direction` (0 for A to B, 1 for B to A) of `seed`, dropping
    /// `percent` % (capped at 100).
    pub fn new(seed: u64, direction: u64, percent: u8) -> Self {
        let mut base = Loss {
            state: seed,
            percent: percent.min(100),
        };
        // One draw per direction index decorrelates the two streams of a seed.
        for _ in 0..=direction {
            base.state = base.next_u64();
        }
        base
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Whether to drop the next IP packet.
    pub fn drop_next(&mut self) -> bool {
        self.next_u64() % 100 < u64::from(self.percent)
    }
}

/// Whether an Ethernet frame carries IPv4 or IPv6 (EtherType 0x0800 or 0x86dd).
pub fn is_ip(frame: &[u8]) -> bool {
    matches!(frame.get(12..14), Some([0x08, 0x00] | [0x86, 0xdd]))
}

/// Frames relayed and dropped in one direction.
#[derive(Debug, Default)]
struct Counters {
    passed: AtomicU64,
    dropped: AtomicU64,
}

fn tap(name: &str) -> std::io::Result<SyncDevice> {
    DeviceBuilder::new()
        .name(name)
        .layer(Layer::L2)
        .build_sync()
}

/// Relays frames from `from` to `to` until an error, dropping by `loss`.
fn relay(
    from: &SyncDevice,
    to: &SyncDevice,
    mut loss: Loss,
    counters: &Counters,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = from.recv(&mut buf)?;
        let frame = &buf[..n];
        if is_ip(frame) && loss.drop_next() {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        to.send(frame)?;
        counters.passed.fetch_add(1, Ordering::Relaxed);
    }
}

fn run(a: &str, b: &str, percent: u8, seed: u64) -> std::io::Result<()> {
    let a = Arc::new(tap(a)?);
    let b = Arc::new(tap(b)?);
    let counters: Arc<[Counters; 2]> = Arc::default();
    for (direction, (from, to)) in [(a.clone(), b.clone()), (b, a)].into_iter().enumerate() {
        let counters = counters.clone();
        std::thread::spawn(move || {
            let loss = Loss::new(seed, direction as u64, percent);
            if let Err(e) = relay(&from, &to, loss, &counters[direction]) {
                eprintln!("dmvpn-impair: relay stopped: {e}");
                std::process::exit(1);
            }
        });
    }
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let [ab, ba] = &*counters;
        println!(
            "a->b passed={} dropped={} b->a passed={} dropped={}",
            ab.passed.load(Ordering::Relaxed),
            ab.dropped.load(Ordering::Relaxed),
            ba.passed.load(Ordering::Relaxed),
            ba.dropped.load(Ordering::Relaxed),
        );
    }
}

/// The relay's command line (`TAP_A TAP_B LOSS_PERCENT SEED`, see the module
/// documentation), for the `dmvpn-impair` binary.
pub fn main_with_args(args: &[&str]) -> ExitCode {
    let result = match args {
        [a, b, loss, seed] => match (loss.parse(), seed.parse()) {
            (Ok(loss), Ok(seed)) => run(a, b, loss, seed),
            _ => Err(std::io::Error::other(
                "LOSS_PERCENT is 0-100 and SEED an unsigned integer",
            )),
        },
        _ => Err(std::io::Error::other(
            "usage: dmvpn-impair TAP_A TAP_B LOSS_PERCENT SEED",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dmvpn-impair: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(seed: u64, direction: u64, percent: u8, n: usize) -> Vec<bool> {
        let mut loss = Loss::new(seed, direction, percent);
        (0..n).map(|_| loss.drop_next()).collect()
    }

    #[test]
    fn a_seed_gives_the_same_drops_and_about_the_share_asked() {
        let a = pattern(7, 0, 20, 10_000);
        assert_eq!(a, pattern(7, 0, 20, 10_000));
        let dropped = a.iter().filter(|d| **d).count();
        assert!((1_800..=2_200).contains(&dropped), "{dropped}");
        // Another seed, or the other direction, is another pattern.
        assert_ne!(a, pattern(8, 0, 20, 10_000));
        let back = pattern(7, 1, 20, 10_000);
        assert_ne!(a, back);
        let dropped_back = back.iter().filter(|d| **d).count();
        assert!((1_800..=2_200).contains(&dropped_back), "{dropped_back}");
    }

    #[test]
    fn no_loss_drops_nothing_and_full_loss_everything() {
        assert!(pattern(1, 0, 0, 1_000).iter().all(|d| !d));
        assert!(pattern(1, 0, 100, 1_000).iter().all(|d| *d));
        assert!(pattern(1, 0, 250, 1_000).iter().all(|d| *d));
    }

    #[test]
    fn splitmix64_matches_its_reference_output() {
        // The first two outputs of the reference C code (prng.di.unimi.it/splitmix64.c)
        // seeded with 0.
        let mut loss = Loss {
            state: 0,
            percent: 0,
        };
        assert_eq!(loss.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(loss.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn only_ip_frames_are_subject_to_loss() {
        let mut frame = [0u8; 60];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        assert!(is_ip(&frame));
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert!(is_ip(&frame));
        // ARP.
        frame[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!is_ip(&frame));
        assert!(!is_ip(&frame[..13]));
    }
}
