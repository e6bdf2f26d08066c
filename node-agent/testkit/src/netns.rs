//! Network namespaces for lab tests: a uniquely named namespace, veth pairs between
//! namespaces, addresses and routes through `ip`, and commands run inside the namespace.
//!
//! Dropping a [`Netns`] stops every process it spawned (by PID, SIGTERM then SIGKILL), deletes
//! the veths it created and then the namespace, so a failing test leaves nothing behind.
//! Needs root (see [`is_root`]).

use std::io;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a process gets to exit after SIGTERM/SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A signal with which [`Netns::stop`] asks a process to exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: daemons such as charon clean up and exit.
    Term,
    /// SIGINT: capture tools such as tcpdump flush their file and exit.
    Int,
    /// SIGKILL: a crash, without any cleanup.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Kill => "KILL",
        }
    }
}

/// Whether this process runs as root (effective UID 0), which namespaces and raw sockets need.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Runs `cmd` to completion; a non-zero exit becomes an error carrying its stderr.
pub fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        )))
    }
}

/// A network namespace owned by a test, with the processes and veths it started.
#[derive(Debug)]
pub struct Netns {
    name: String,
    children: Mutex<Vec<Child>>,
    veths: Mutex<Vec<String>>,
}

impl Netns {
    /// Creates a namespace named `{prefix}-{pid}-{n}` (unique on this machine while this test
    /// process lives) with its loopback up.
    pub fn create(prefix: &str) -> io::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns {
            name,
            children: Mutex::new(Vec::new()),
            veths: Mutex::new(Vec::new()),
        };
        ns.link_up("lo")?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME args…` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let out = run(Command::new("ip").args(["-n", &self.name]).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Sets link `dev` up.
    pub fn link_up(&self, dev: &str) -> io::Result<()> {
        self.ip(&["link", "set", dev, "up"]).map(drop)
    }

    /// Adds address `cidr` (such as `198.18.0.1/24`) to `dev`.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> io::Result<()> {
        self.ip(&["addr", "add", cidr, "dev", dev]).map(drop)
    }

    /// Adds a route: `ip route add DST` followed by `spec` (such as `["via", "198.18.0.1"]`).
    pub fn add_route(&self, dst: &str, spec: &[&str]) -> io::Result<()> {
        let mut args = vec!["route", "add", dst];
        args.extend_from_slice(spec);
        self.ip(&args).map(drop)
    }

    /// Creates a veth pair, `dev` here and `peer_dev` in `peer`, and sets both up. Interface
    /// names live in their namespace, so the same names may be used by other labs.
    pub fn veth(&self, dev: &str, peer: &Netns, peer_dev: &str) -> io::Result<()> {
        self.ip(&[
            "link", "add", dev, "type", "veth", "peer", "name", peer_dev, "netns", &peer.name,
        ])?;
        lock(&self.veths).push(dev.to_owned());
        self.link_up(dev)?;
        peer.link_up(peer_dev)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args…` inside the namespace to completion; a non-zero exit is an error.
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        run(self.command(program).args(args))
    }

    /// Starts `cmd` (built with [`Netns::command`]) and keeps it, to be stopped by
    /// [`Netns::stop`] or when the namespace is dropped. Returns its PID: `ip netns exec`,
    /// `unshare` without `--fork` and `sh -c 'exec …'` all exec, so it is the PID of the
    /// program itself.
    pub fn spawn(&self, mut cmd: Command) -> io::Result<u32> {
        let child = cmd.stdin(Stdio::null()).spawn()?;
        let pid = child.id();
        lock(&self.children).push(child);
        Ok(pid)
    }

    /// Whether the process `pid` started by [`Netns::spawn`] is still running.
    pub fn is_running(&self, pid: u32) -> bool {
        lock(&self.children)
            .iter_mut()
            .any(|c| c.id() == pid && matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the process `pid` started by [`Netns::spawn`]: sends `signal`, waits up to 5 s,
    /// then kills it. Returns how it exited.
    ///
    /// # Errors
    /// When `pid` was not started here (or was already stopped), or waiting fails.
    pub fn stop(&self, pid: u32, signal: Signal) -> io::Result<ExitStatus> {
        let mut children = lock(&self.children);
        let index = children.iter().position(|c| c.id() == pid).ok_or_else(|| {
            io::Error::other(format!("pid {pid} was not started in {}", self.name))
        })?;
        let mut child = children.swap_remove(index);
        drop(children);
        stop_child(&mut child, signal)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for mut child in std::mem::take(&mut *lock(&self.children)) {
            if let Err(e) = stop_child(&mut child, Signal::Term) {
                eprintln!("netns {}: stopping pid {}: {e}", self.name, child.id());
            }
        }
        for dev in std::mem::take(&mut *lock(&self.veths)) {
            // Deleting one end deletes the pair; it may already be gone with the peer.
            let _ = Command::new("ip")
                .args(["-n", &self.name, "link", "del", &dev])
                .stderr(Stdio::null())
                .status();
        }
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("netns {}: {e}", self.name);
        }
    }
}

/// Locks `m`, also after a panic in another test thread poisoned it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Signals `child` by its PID, waits up to [`STOP_GRACE`], then kills and reaps it.
fn stop_child(child: &mut Child, signal: Signal) -> io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    // The child is not reaped yet, so its PID cannot have been reused.
    let _ = Command::new("kill")
        .args(["-s", signal.name(), &child.id().to_string()])
        .status();
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()
}
