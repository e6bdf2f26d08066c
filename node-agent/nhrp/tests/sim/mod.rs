//! A deterministic network simulation for NHRP engines (quinn-proto `tests/util.rs`,
//! smoltcp `tests/netsim.rs` style): engines exchange their `Transmit`s through an
//! in-memory NBMA network keyed by outer address, a virtual clock steps to the earliest
//! delivery or engine deadline, and a seeded PRNG drives loss, duplication and reordering.
//! The same seed gives the same trace, which is hashed (and optionally recorded).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dmvpn_nhrp::{Config, Engine, Event, NhsConfig, Password, Prefix, Role, SplitMix64};

/// One router in the simulation.
pub struct Node {
    /// A name for traces.
    pub name: String,
    /// The engine.
    pub engine: Engine,
    /// The outer source address its packets carry (differs from the configured NBMA
    /// address behind NAT); packets to this address reach it.
    pub public: IpAddr,
    /// A stopped node receives nothing and its timers do not run.
    pub running: bool,
}

struct Datagram {
    from: IpAddr,
    to: IpAddr,
    payload: Vec<u8>,
}

/// Impairments of the network, in parts per million.
#[derive(Debug, Clone, Copy)]
pub struct Impairments {
    /// Probability that a datagram is lost.
    pub loss_ppm: u32,
    /// Probability that a datagram is delivered twice.
    pub duplicate_ppm: u32,
    /// Probability that a datagram gets up to `jitter` of extra delay (reordering it).
    pub reorder_ppm: u32,
    /// The one-way latency.
    pub latency: Duration,
    /// The largest extra delay of a reordered datagram.
    pub jitter: Duration,
}

impl Impairments {
    /// A perfect network with 5 ms latency.
    pub fn perfect() -> Self {
        Impairments {
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(20),
        }
    }

    /// `loss_percent` loss, with 1% duplication and 5% reordering.
    pub fn lossy(loss_percent: u32) -> Self {
        Impairments {
            loss_ppm: loss_percent * 10_000,
            duplicate_ppm: 10_000,
            reorder_ppm: 50_000,
            ..Self::perfect()
        }
    }
}

/// The simulation.
pub struct Sim {
    /// The virtual epoch.
    pub base: Instant,
    /// The virtual now.
    pub now: Instant,
    /// The routers.
    pub nodes: Vec<Node>,
    by_addr: BTreeMap<IpAddr, usize>,
    queue: BTreeMap<(Instant, u64), Datagram>,
    seq: u64,
    timeouts: BTreeSet<(Instant, usize)>,
    node_timeout: Vec<Option<Instant>>,
    rng: SplitMix64,
    seed: u64,
    /// The network's impairments.
    pub net: Impairments,
    /// FNV-1a hash of every delivery, loss and event, in order.
    pub trace_hash: u64,
    /// The trace lines, when recording.
    pub trace: Option<Vec<String>>,
    /// Every datagram sent (outer source, destination, NHRP bytes), when capturing.
    pub captured: Option<Vec<(IpAddr, IpAddr, Vec<u8>)>>,
    /// Every event, with its time and node index.
    pub events: Vec<(Instant, usize, Event)>,
    /// NhsUp minus NhsDown events over all nodes.
    pub nhs_up: i64,
    /// Datagrams delivered.
    pub delivered: u64,
    /// Steps taken.
    pub steps: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl Sim {
    /// An empty network.
    pub fn new(seed: u64, net: Impairments) -> Self {
        let base = Instant::now();
        Sim {
            base,
            now: base,
            nodes: Vec::new(),
            by_addr: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            timeouts: BTreeSet::new(),
            node_timeout: Vec::new(),
            rng: SplitMix64(seed),
            seed,
            net,
            trace_hash: FNV_OFFSET,
            trace: None,
            captured: None,
            events: Vec::new(),
            nhs_up: 0,
            delivered: 0,
            steps: 0,
        }
    }

    /// The virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// A seeded random source for the engine of node `index`.
    pub fn engine_rng(&self, index: usize) -> Box<SplitMix64> {
        Box::new(SplitMix64(
            self.seed ^ (index as u64).wrapping_mul(0x9e37_79b9),
        ))
    }

    /// Adds a router reachable at `public` and returns its index.
    pub fn add(&mut self, name: &str, config: Config, public: IpAddr) -> usize {
        let i = self.nodes.len();
        let engine = Engine::new(config, self.engine_rng(i), self.now).unwrap();
        self.nodes.push(Node {
            name: name.to_owned(),
            engine,
            public,
            running: true,
        });
        self.node_timeout.push(None);
        self.by_addr.insert(public, i);
        self.after(i);
        i
    }

    /// Replaces node `i` with a fresh engine at `public` (a restart, possibly behind a new
    /// address). Packets in flight to its old address are lost.
    pub fn restart(&mut self, i: usize, config: Config, public: IpAddr) {
        let old = self.nodes[i].public;
        self.by_addr.remove(&old);
        self.nodes[i].engine =
            Engine::new(config, self.engine_rng(i + 1_000_000), self.now).unwrap();
        self.nodes[i].public = public;
        self.nodes[i].running = true;
        self.by_addr.insert(public, i);
        self.after(i);
    }

    /// Runs a command on node `i`'s engine at the current time (`traffic_to`, `resolve`),
    /// then drains its output.
    pub fn command(&mut self, i: usize, f: impl FnOnce(&mut Engine, Instant)) {
        f(&mut self.nodes[i].engine, self.now);
        self.after(i);
    }

    /// Moves node `i` to the outer address `public` without restarting it (its packets in
    /// flight to the old address are lost).
    pub fn readdress(&mut self, i: usize, public: IpAddr) {
        let old = self.nodes[i].public;
        self.by_addr.remove(&old);
        self.nodes[i].public = public;
        self.by_addr.insert(public, i);
    }

    /// Stops node `i`: it receives nothing and sends nothing from now on.
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].running = false;
        if let Some(at) = self.node_timeout[i].take() {
            self.timeouts.remove(&(at, i));
        }
    }

    fn record(&mut self, line: impl FnOnce() -> String) {
        let t = (self.now - self.base).as_nanos();
        self.trace_hash = fnv(self.trace_hash, &t.to_be_bytes());
        let line = line();
        self.trace_hash = fnv(self.trace_hash, line.as_bytes());
        if let Some(trace) = &mut self.trace {
            trace.push(format!(
                "{:>12.6} {line}",
                (self.now - self.base).as_secs_f64()
            ));
        }
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && (self.rng.next_u64() % 1_000_000) < u64::from(ppm)
    }

    fn delay(&mut self) -> Duration {
        let mut d = self.net.latency;
        if self.chance(self.net.reorder_ppm) {
            let j = self.net.jitter.as_micros() as u64;
            d += Duration::from_micros(self.rng.next_u64() % j.max(1));
        }
        d
    }

    fn enqueue(&mut self, at: Instant, datagram: Datagram) {
        self.seq += 1;
        self.queue.insert((at, self.seq), datagram);
    }

    /// Drains node `i`'s transmits and events and re-files its deadline.
    fn after(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].engine.poll_transmit() {
            let from = self.nodes[i].public;
            let hash = fnv(FNV_OFFSET, &t.payload);
            if let Some(c) = &mut self.captured {
                c.push((from, t.dst, t.payload.clone()));
            }
            if self.chance(self.net.loss_ppm) {
                self.record(|| format!("lost {from} -> {} {hash:016x}", t.dst));
                continue;
            }
            let d = self.delay();
            if self.chance(self.net.duplicate_ppm) {
                let d2 = self.delay() + Duration::from_millis(1);
                let dup = Datagram {
                    from,
                    to: t.dst,
                    payload: t.payload.clone(),
                };
                self.enqueue(self.now + d2, dup);
            }
            self.enqueue(
                self.now + d,
                Datagram {
                    from,
                    to: t.dst,
                    payload: t.payload,
                },
            );
        }
        while let Some(e) = self.nodes[i].engine.poll_event() {
            match e {
                Event::NhsUp { .. } => self.nhs_up += 1,
                Event::NhsDown { .. } => self.nhs_up -= 1,
                _ => {}
            }
            let line = format!("{}: {}", self.nodes[i].name, self.describe(&e));
            self.record(|| line);
            self.events.push((self.now, i, e));
        }
        if let Some(at) = self.node_timeout[i].take() {
            self.timeouts.remove(&(at, i));
        }
        if self.nodes[i].running {
            let next = self.nodes[i].engine.poll_timeout();
            self.node_timeout[i] = next;
            if let Some(at) = next {
                self.timeouts.insert((at, i));
            }
        }
    }

    /// An event as a trace line: instants become offsets from the epoch, so that two runs
    /// with the same seed print the same text.
    fn describe(&self, e: &Event) -> String {
        match e {
            Event::CacheAdded { prefix, entry }
            | Event::CacheUpdated { prefix, entry }
            | Event::CacheRemoved { prefix, entry, .. } => {
                let kind = match e {
                    Event::CacheAdded { .. } => "CacheAdded".to_owned(),
                    Event::CacheUpdated { .. } => "CacheUpdated".to_owned(),
                    Event::CacheRemoved { reason, .. } => format!("CacheRemoved({reason:?})"),
                    _ => unreachable!(),
                };
                let expires = entry.expires.map(|at| (at - self.base).as_secs_f64());
                format!(
                    "{kind} {prefix} {:?} via {} nbma {} claimed {} hold {} unique {} expires {expires:?}",
                    entry.kind,
                    entry.tunnel,
                    entry.nbma,
                    entry.claimed_nbma,
                    entry.holdtime,
                    entry.unique
                )
            }
            other => format!("{other:?}"),
        }
    }

    /// Advances to the next delivery or deadline and processes everything due then.
    /// Returns false when nothing is left to do.
    pub fn step(&mut self) -> bool {
        let next_packet = self.queue.keys().next().map(|(at, _)| *at);
        let next_timer = self.timeouts.iter().next().map(|(at, _)| *at);
        let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        self.steps += 1;
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let d = entry.remove();
            let hash = fnv(FNV_OFFSET, &d.payload);
            match self.by_addr.get(&d.to).copied() {
                Some(i) if self.nodes[i].running => {
                    self.record(|| format!("deliver {} -> {} {hash:016x}", d.from, d.to));
                    self.delivered += 1;
                    self.nodes[i]
                        .engine
                        .handle_packet(self.now, d.from, &d.payload);
                    self.after(i);
                }
                _ => self.record(|| format!("unreachable {} -> {} {hash:016x}", d.from, d.to)),
            }
        }
        while let Some(&(at, i)) = self.timeouts.iter().next() {
            if at > self.now {
                break;
            }
            self.timeouts.remove(&(at, i));
            self.node_timeout[i] = None;
            self.nodes[i].engine.handle_timeout(self.now);
            self.after(i);
        }
        true
    }

    /// Steps until `done` holds (checked after each step) or `limit` of virtual time has
    /// passed; runs `check` after every step. Returns whether `done` held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Sim) -> bool,
        mut check: impl FnMut(&Sim),
    ) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            let next_packet = self.queue.keys().next().map(|(at, _)| *at);
            let next_timer = self.timeouts.iter().next().map(|(at, _)| *at);
            match [next_packet, next_timer].into_iter().flatten().min() {
                Some(at) if at <= end => {
                    self.step();
                    check(self);
                }
                _ => {
                    self.now = end;
                    break;
                }
            }
        }
        done(self)
    }

    /// Runs for `d` of virtual time, checking after each step.
    pub fn run_for(&mut self, d: Duration, check: impl FnMut(&Sim)) {
        self.run_until(d, |_| false, check);
    }
}

/// Properties that hold after every step: no cache entry outlives its holding time
/// (nothing expired is still cached, nothing expires later than its holdtime from now).
pub fn check_holdtimes(sim: &Sim) {
    for node in sim.nodes.iter().filter(|n| n.running) {
        for (prefix, entry) in node.engine.cache().iter() {
            if let Some(at) = entry.expires {
                assert!(
                    at > sim.now,
                    "{}: {prefix} outlived its expiry at {:?}",
                    node.name,
                    sim.elapsed()
                );
                assert!(
                    at - sim.now <= Duration::from_secs(u64::from(entry.holdtime)),
                    "{}: {prefix} expires later than its holdtime",
                    node.name
                );
            }
        }
    }
}

/// The tunnel addresses, NBMA addresses and LANs of the seed topology (hub 10.1.1.1 at
/// 198.18.0.1, spokes 10.1.1.2 and 10.1.1.3 with 192.168.2.0/24 and 192.168.3.0/24).
pub mod seed {
    use super::*;

    /// The hub's tunnel address.
    pub const HUB: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 1);
    /// The hub's NBMA address.
    pub const HUB_NBMA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    /// Spoke tunnel address.
    pub fn spoke(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 1, 1, n)
    }
    /// Spoke NBMA address.
    pub fn spoke_nbma(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, n)
    }
    /// Spoke LAN.
    pub fn lan(n: u8) -> Prefix {
        Prefix::new(Ipv4Addr::new(192, 168, n, 0).into(), 24).unwrap()
    }

    /// The hub's configuration.
    pub fn hub(password: Option<&[u8]>) -> Config {
        let mut c = Config::new(Role::Hub, HUB.into(), 24, HUB_NBMA.into());
        c.password = password.map(|p| Password::new(p).unwrap());
        c.redirect = true;
        c
    }

    /// Spoke `n`'s configuration, at NBMA address `nbma`.
    pub fn spoke_config(n: u8, nbma: Ipv4Addr, password: Option<&[u8]>) -> Config {
        let mut c = Config::new(Role::Spoke, spoke(n).into(), 24, nbma.into());
        c.password = password.map(|p| Password::new(p).unwrap());
        c.nhs.push(NhsConfig {
            tunnel: HUB.into(),
            nbma: HUB_NBMA.into(),
            priority: 0,
        });
        c.advertised_prefixes.push(lan(n));
        c.shortcut = true;
        c
    }

    /// Hub, spoke 2 and spoke 3 (index 0, 1, 2), all with `password`.
    pub fn topology(seed: u64, net: Impairments, password: Option<&[u8]>) -> Sim {
        let mut sim = Sim::new(seed, net);
        sim.add("hub", hub(password), HUB_NBMA.into());
        for n in [2, 3] {
            sim.add(
                &format!("spoke{n}"),
                spoke_config(n, spoke_nbma(n), password),
                spoke_nbma(n).into(),
            );
        }
        sim
    }
}
