//! The driver's event loop: the sans-IO engine on real UDP sockets (ports 500 and 4500, RFC
//! 7296 section 2.23), fed in the documented order (datagrams and timeouts in, then
//! transmits, events and the next timeout out), with the ESP/GRE path of [`crate::dataplane`]
//! and commands from the command line or a control socket.
//!
//! Threads: one reader per socket forwards what it receives into a channel; the main thread
//! owns the engine and the SAs and is the only writer.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::Context;
use dmvpn_ike::{DropReason, Engine, Event, SystemRng};
use dmvpn_wire::udp_encap::{Datagram, IKE_PORT, NAT_T_PORT};

use crate::cli::{Args, seconds};
use crate::dataplane::{BUFFER_LEN, EspPath};
use crate::summary::Summary;

/// The longest the loop sleeps, so that a stop request is seen soon.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Events kept for the summary; later ones are only counted.
const MAX_EVENTS: usize = 1000;

/// Something for the main thread.
#[derive(Debug)]
enum Input {
    /// A UDP datagram received on our port `local_port` from `from`.
    Datagram {
        local_port: u16,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    /// A control command, and where to answer.
    Command {
        text: String,
        reply: Option<PathBuf>,
    },
}

/// A command of the driver, from a flag's timer or the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Answer with the summary.
    Status,
    /// Rekey every CHILD_SA (RFC 7296 section 1.3.3).
    RekeyChild,
    /// Rekey the IKE SAs (section 1.3.2).
    RekeyIke,
    /// Delete the IKE SAs (section 1.4.1).
    Delete,
    /// Bring up an IKE SA with this peer.
    Initiate(IpAddr),
    /// Send this many more GRE probes.
    Send(u64),
}

impl Command {
    /// Parses a control socket command.
    ///
    /// # Errors
    /// An unknown command or a bad argument.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["status"] => Ok(Command::Status),
            ["rekey-child"] => Ok(Command::RekeyChild),
            ["rekey-ike"] => Ok(Command::RekeyIke),
            ["delete"] => Ok(Command::Delete),
            ["initiate", addr] => addr
                .parse()
                .map(Command::Initiate)
                .map_err(|_| format!("initiate {addr}: not an address")),
            ["send", n] => n
                .parse()
                .map(Command::Send)
                .map_err(|_| format!("send {n}: not a count")),
            _ => Err(format!("unknown command `{text}`")),
        }
    }
}

/// The driver's state beside the engine.
struct Peer {
    start: Instant,
    esp: EspPath,
    summary: Summary,
    /// When the first CHILD_SA came up: the flags' timers count from there.
    first_child_at: Option<Instant>,
    /// Timed commands not yet run, with their delay after the first CHILD_SA.
    timed: Vec<(Duration, Command)>,
    /// Probes still to send, the interval between two, and when the next may go.
    probes_left: u64,
    probe_interval: Duration,
    next_probe_at: Instant,
    /// The peers we have SAs with, for commands that name none.
    peers: Vec<IpAddr>,
    key_log: Option<PathBuf>,
    key_log_written: String,
    buf: Vec<u8>,
}

/// Runs the driver until `stop` is set or `--run-for` passes; returns the summary.
///
/// # Errors
/// A bad configuration, or sockets that cannot be bound.
pub fn run(args: &Args, stop: &AtomicBool) -> anyhow::Result<Summary> {
    let config = args.config()?;
    let s500 = UdpSocket::bind((args.local, IKE_PORT)).context("binding UDP 500")?;
    let s4500 = UdpSocket::bind((args.local, NAT_T_PORT)).context("binding UDP 4500")?;
    let (tx, rx) = mpsc::channel();
    spawn_udp_reader(s500.try_clone()?, IKE_PORT, tx.clone())?;
    spawn_udp_reader(s4500.try_clone()?, NAT_T_PORT, tx.clone())?;
    let control = match &args.control {
        Some(path) => Some(bind_control(path, tx)?),
        None => None,
    };
    let start = Instant::now();
    let mut engine = Engine::new(config, Box::new(SystemRng::new()), start)?;
    let mut timed = Vec::new();
    for (after, command) in [
        (args.rekey_child_after, Command::RekeyChild),
        (args.rekey_ike_after, Command::RekeyIke),
        (args.delete_after, Command::Delete),
    ] {
        if let Some(after) = after {
            timed.push((seconds(after)?, command));
        }
    }
    let rate = if args.gre_rate > 0.0 {
        args.gre_rate
    } else {
        anyhow::bail!("--gre-rate must be above zero")
    };
    let mut peer = Peer {
        start,
        esp: EspPath::default(),
        summary: Summary::default(),
        first_child_at: None,
        timed,
        probes_left: args.gre_count,
        probe_interval: seconds(1.0 / rate)?,
        next_probe_at: start,
        peers: args.initiate.into_iter().collect(),
        key_log: args.key_log.clone(),
        key_log_written: String::new(),
        buf: vec![0; BUFFER_LEN],
    };
    if let Some(addr) = args.initiate {
        engine.initiate(start, addr);
    }
    let end = match args.run_for {
        Some(s) => Some(start + seconds(s)?),
        None => None,
    };
    let sockets = [(IKE_PORT, &s500), (NAT_T_PORT, &s4500)];
    loop {
        let now = Instant::now();
        if engine.poll_timeout().is_some_and(|at| at <= now) {
            engine.handle_timeout(now);
        }
        peer.run_timed(&mut engine, now);
        peer.send_probes(now, &s4500);
        peer.flush(&mut engine, now, &sockets);
        if stop.load(Ordering::Relaxed) || end.is_some_and(|e| now >= e) {
            break;
        }
        let mut wake = now + MAX_WAIT;
        if let Some(at) = engine.poll_timeout() {
            wake = wake.min(at);
        }
        if peer.probes_left > 0 && peer.esp.has_outbound() {
            wake = wake.min(peer.next_probe_at);
        }
        let input = match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(input) => input,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("every reader stopped"),
        };
        // Everything already queued is handled before the engine is asked for output.
        for input in std::iter::once(input).chain(rx.try_iter()) {
            let now = Instant::now();
            match input {
                Input::Datagram {
                    local_port,
                    from,
                    mut bytes,
                } => peer.datagram(&mut engine, now, local_port, from, &mut bytes, args.local),
                Input::Command { text, reply } => {
                    let answer = match Command::parse(&text) {
                        Ok(Command::Status) => {
                            peer.flush(&mut engine, now, &sockets);
                            serde_json::to_string(&peer.summarize(&engine))?
                        }
                        Ok(command) => {
                            peer.command(&mut engine, now, command);
                            peer.flush(&mut engine, now, &sockets);
                            "ok".to_owned()
                        }
                        Err(e) => format!("error: {e}"),
                    };
                    if let (Some(control), Some(reply)) = (&control, reply)
                        && let Err(e) = control.send_to(answer.as_bytes(), &reply)
                    {
                        eprintln!("control: answering {}: {e}", reply.display());
                    }
                }
            }
        }
    }
    let now = Instant::now();
    peer.flush(&mut engine, now, &sockets);
    Ok(peer.summarize(&engine))
}

fn spawn_udp_reader(socket: UdpSocket, local_port: u16, tx: Sender<Input>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name(format!("udp-{local_port}"))
        .spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let bytes = buf.get(..n).unwrap_or_default().to_vec();
                        let input = Input::Datagram {
                            local_port,
                            from,
                            bytes,
                        };
                        if tx.send(input).is_err() {
                            return;
                        }
                    }
                    Err(e) => eprintln!("udp {local_port}: {e}"),
                }
            }
        })?;
    Ok(())
}

/// Binds the control socket at `path` and starts its reader; returns a handle for answers.
fn bind_control(path: &Path, tx: Sender<Input>) -> anyhow::Result<UnixDatagram> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let socket = UnixDatagram::bind(path).with_context(|| format!("binding {}", path.display()))?;
    let reader = socket.try_clone()?;
    std::thread::Builder::new()
        .name("control".to_owned())
        .spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                match reader.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                        let input = Input::Command {
                            text: text.trim().to_owned(),
                            reply: from.as_pathname().map(Path::to_owned),
                        };
                        if tx.send(input).is_err() {
                            return;
                        }
                    }
                    Err(e) => eprintln!("control: {e}"),
                }
            }
        })?;
    Ok(socket)
}

fn bump(map: &mut BTreeMap<String, u64>, key: String) {
    *map.entry(key).or_default() += 1;
}

impl Peer {
    /// A received datagram: ESP to the ESP path, anything else to the engine.
    fn datagram(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        local_port: u16,
        from: SocketAddr,
        bytes: &mut [u8],
        local: IpAddr,
    ) {
        if local_port == NAT_T_PORT && matches!(Datagram::parse(bytes), Ok(Datagram::Esp(_))) {
            self.esp.open(now, bytes);
        } else {
            engine.handle_datagram(now, SocketAddr::new(local, local_port), from, bytes);
        }
    }

    /// Runs the flags' commands that are due.
    fn run_timed(&mut self, engine: &mut Engine, now: Instant) {
        let Some(first) = self.first_child_at else {
            return;
        };
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timed)
            .into_iter()
            .partition(|(after, _)| first + *after <= now);
        self.timed = later;
        for (_, command) in due {
            self.command(engine, now, command);
        }
    }

    fn command(&mut self, engine: &mut Engine, now: Instant, command: Command) {
        self.log(now, &format!("command {command:?}"));
        match command {
            Command::Status => {}
            Command::RekeyChild => self.peers.iter().for_each(|p| engine.rekey_child(now, *p)),
            Command::RekeyIke => self.peers.iter().for_each(|p| engine.rekey_ike(now, *p)),
            Command::Delete => self.peers.iter().for_each(|p| engine.delete(now, *p)),
            Command::Initiate(addr) => {
                if !self.peers.contains(&addr) {
                    self.peers.push(addr);
                }
                engine.initiate(now, addr);
            }
            Command::Send(n) => self.probes_left = self.probes_left.saturating_add(n),
        }
    }

    /// Sends the probes that are due, at the configured rate, once a CHILD_SA is up.
    fn send_probes(&mut self, now: Instant, socket: &UdpSocket) {
        while self.probes_left > 0 && self.next_probe_at <= now {
            if !self.esp.has_outbound() {
                return;
            }
            let index = u32::try_from(self.esp.sealed).unwrap_or(u32::MAX);
            if let Some(sealed) = self.esp.seal_probe(now, index, &mut self.buf) {
                let packet = self.buf.get(..sealed.len).unwrap_or_default();
                if let Err(e) = socket.send_to(packet, sealed.remote) {
                    eprintln!("esp to {}: {e}", sealed.remote);
                    self.esp.send_failed();
                }
            }
            self.probes_left -= 1;
            self.next_probe_at = (self.next_probe_at + self.probe_interval).max(now);
        }
    }

    /// Drains the engine: datagrams out, events into SAs and counters; then the key log.
    fn flush(&mut self, engine: &mut Engine, now: Instant, sockets: &[(u16, &UdpSocket)]) {
        while let Some(t) = engine.poll_transmit() {
            match sockets.iter().find(|(port, _)| *port == t.local.port()) {
                Some((_, socket)) => {
                    if let Err(e) = socket.send_to(&t.payload, t.remote) {
                        eprintln!("ike to {}: {e}", t.remote);
                    }
                }
                None => eprintln!("ike: no socket on {}", t.local),
            }
        }
        while let Some(event) = engine.poll_event() {
            self.event(now, event);
        }
        self.write_key_log(engine);
    }

    fn event(&mut self, now: Instant, event: Event) {
        let line = match event {
            Event::Dropped { from, reason } => {
                self.log(now, &format!("dropped from {from}: {}", reason.as_str()));
                return;
            }
            Event::IkeSaUp {
                peer,
                spi_i,
                spi_r,
                initiator,
                nat,
                replaces,
                ..
            } => {
                self.summary.ike_sas_up += 1;
                if replaces.is_some() {
                    self.summary.ike_rekeys += 1;
                }
                if !self.peers.contains(&peer) {
                    self.peers.push(peer);
                }
                format!(
                    "ike_sa_up peer={peer} spi_i={spi_i:016x} spi_r={spi_r:016x} initiator={initiator} nat={nat} rekey={}",
                    replaces.is_some()
                )
            }
            Event::IkeSaDown {
                peer,
                spi_i,
                spi_r,
                reason,
            } => {
                bump(&mut self.summary.ike_sas_down, format!("{reason:?}"));
                format!(
                    "ike_sa_down peer={peer} spi_i={spi_i:016x} spi_r={spi_r:016x} reason={reason:?}"
                )
            }
            Event::IkeSaFailed { peer, reason } => {
                bump(&mut self.summary.ike_sas_failed, format!("{reason:?}"));
                format!("ike_sa_failed peer={peer} reason={reason:?}")
            }
            Event::ChildSaUp(up) => {
                self.summary.child_sas_up += 1;
                if up.replaces.is_some() {
                    self.summary.child_rekeys += 1;
                }
                self.first_child_at.get_or_insert(now);
                if let Err(e) = self.esp.install(now, &up) {
                    bump(&mut self.summary.send_errors, format!("install: {e}"));
                }
                format!(
                    "child_sa_up peer={} in={:#010x} out={:#010x} mode={:?} encap={} encr={} rekey={}",
                    up.peer,
                    up.inbound.spi,
                    up.outbound.spi,
                    up.mode,
                    up.udp_encap,
                    up.outbound.algorithm.name(),
                    up.replaces.is_some()
                )
            }
            Event::ChildSaDown {
                peer,
                inbound_spi,
                outbound_spi,
                reason,
            } => {
                self.esp.remove(inbound_spi, outbound_spi);
                bump(&mut self.summary.child_sas_down, format!("{reason:?}"));
                format!(
                    "child_sa_down peer={peer} in={inbound_spi:#010x} out={outbound_spi:#010x} reason={reason:?}"
                )
            }
            Event::ChildSaFailed { peer, notify } => {
                bump(&mut self.summary.child_sas_failed, format!("{notify:?}"));
                format!("child_sa_failed peer={peer} notify={notify:?}")
            }
        };
        self.log(now, &line);
        if self.summary.events.len() < MAX_EVENTS {
            self.summary.events.push(line);
        }
    }

    /// Rewrites the key log file when it changed (through a temporary file and a rename, so
    /// that a reader never sees half of it).
    fn write_key_log(&mut self, engine: &Engine) {
        let Some(path) = &self.key_log else {
            return;
        };
        let json = engine.key_log().to_json();
        if json == self.key_log_written {
            return;
        }
        let tmp = path.with_extension("tmp");
        match std::fs::write(&tmp, &json).and_then(|()| std::fs::rename(&tmp, path)) {
            Ok(()) => self.key_log_written = json,
            Err(e) => eprintln!("key log {}: {e}", path.display()),
        }
    }

    fn summarize(&self, engine: &Engine) -> Summary {
        let counters = engine.counters();
        let mut s = self.summary.clone();
        s.ike_sas_established = engine.ike_sas().iter().filter(|sa| sa.established).count() as u64;
        s.children = self.esp.children();
        s.sealed = self.esp.sealed;
        s.opened = self.esp.opened;
        s.gre_received = self.esp.gre_received;
        s.send_errors.extend(self.esp.send_errors.clone());
        s.esp_drops = self.esp.drops.clone();
        s.ike_drops = DropReason::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), counters.dropped(*r)))
            .filter(|(_, n)| *n > 0)
            .collect();
        s.ike_received = counters.received.0;
        s.ike_sent = counters.sent.0;
        s.ike_retransmissions = counters.retransmissions;
        s.cookies_sent = counters.cookies_sent;
        s.invalid_ke_sent = counters.invalid_ke_sent;
        s
    }

    /// A line on stderr, for the post-mortem of a failed test (never a key).
    fn log(&self, now: Instant, line: &str) {
        eprintln!(
            "{:>8.3} {line}",
            now.saturating_duration_since(self.start).as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_commands_parse() {
        assert_eq!(Command::parse("status"), Ok(Command::Status));
        assert_eq!(Command::parse(" rekey-child "), Ok(Command::RekeyChild));
        assert_eq!(Command::parse("rekey-ike"), Ok(Command::RekeyIke));
        assert_eq!(Command::parse("delete"), Ok(Command::Delete));
        assert_eq!(Command::parse("send 12"), Ok(Command::Send(12)));
        assert_eq!(
            Command::parse("initiate 198.18.0.2"),
            Ok(Command::Initiate("198.18.0.2".parse().unwrap()))
        );
        assert!(Command::parse("send many").is_err());
        assert!(Command::parse("initiate nowhere").is_err());
        assert!(Command::parse("reboot").is_err());
    }
}
