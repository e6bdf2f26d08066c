//! The seed's three sites as real `dmvpn-agent` processes in network namespaces (the
//! topology of `e2e/lab.sh`: an underlay bridge on 198.18.0.0/15, a router namespace per
//! site, a LAN host behind each), with the IPsec of e2e/lab/*.yaml (IKEv2 with the
//! pre-shared key, ESP-in-UDP), judged from outside: pings between the LAN hosts, the
//! routes and devices in the router namespaces, `dmvpnctl show ... -o json` over the admin
//! sockets, the key logs, and the agents' JSON logs (the `stats` lines carry the hub's
//! forwarded-packet counter). Needs root (see [`skip_without_root`]).
//!
//! Site `i` (hub 0, spoke1 1, spoke2 2, more spokes after) has underlay address
//! 198.18.0.`i+1` on its router's `wan0`, whose peer `NAME` in the `inet` namespace is a port
//! of the bridge `inet`, and LAN 192.168.`i+1`.0/24 on `lan0` (router .1, host .10).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::{Netns, Signal, is_root};

/// The seed's sites, in index order.
pub const SITES: [&str; 3] = ["hub", "spoke1", "spoke2"];
/// Index of the hub.
pub const HUB: usize = 0;
/// Index of spoke1.
pub const SPOKE1: usize = 1;
/// Index of spoke2.
pub const SPOKE2: usize = 2;

/// The programs a lab runs: the test's `CARGO_BIN_EXE_*` paths.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `dmvpn-agent`.
    pub agent: PathBuf,
    /// `dmvpnctl`.
    pub dmvpnctl: PathBuf,
}

/// One site: its router and LAN host namespaces, config and the files of its agent.
#[derive(Debug)]
pub struct Site {
    /// The site's name (`hub`, `spoke1`, ...).
    pub name: &'static str,
    /// The router namespace, where the agent runs.
    pub router: Netns,
    /// The LAN host namespace.
    pub host: Netns,
    /// The agent's config file.
    pub config: PathBuf,
    /// The agent's stdout and stderr (JSON log lines).
    pub log: PathBuf,
    /// The agent's key log.
    pub key_log: PathBuf,
    /// The agent's admin socket.
    pub socket: PathBuf,
    /// The running agent's PID.
    pub pid: Option<u32>,
}

/// The lab: sites on an underlay bridge.
#[derive(Debug)]
pub struct Lab {
    // Dropped before `inet`: the routers' veths end on its bridge.
    /// The sites, in index order.
    pub sites: Vec<Site>,
    /// The underlay namespace with the bridge `inet`.
    pub inet: Netns,
    /// The folder of configs, logs and key logs (removed unless a test panicked).
    pub dir: PathBuf,
    bins: Bins,
}

/// The first three octets of site `i`'s LAN.
pub fn lan(i: usize) -> String {
    format!("192.168.{}", i + 1)
}

/// Site `i`'s underlay address (on its router's `wan0`).
pub fn underlay(i: usize) -> String {
    format!("198.18.0.{}", i + 1)
}

/// Polls `done` every 20 ms for up to `limit`; whether it came true.
pub fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A site's lab config: e2e/lab/`template`.yaml with its admin socket `name`.sock in `dir`
/// (beside a copy of the lab's key file, e2e/lab/dmvpn.psk, and a wrong one, wrong.psk),
/// and `edit` applied.
pub fn write_config(
    dir: &Path,
    template: &str,
    name: &str,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/lab");
    std::fs::copy(lab.join("dmvpn.psk"), dir.join("dmvpn.psk")).unwrap();
    // For the wrong-key test.
    std::fs::write(dir.join("wrong.psk"), "not-@lpha\n").unwrap();
    let text = std::fs::read_to_string(lab.join(format!("{template}.yaml"))).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("  socket:") {
            out += &format!("  socket: {}/{name}.sock\n", dir.display());
            continue;
        }
        out += line;
        out.push('\n');
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, edit(out)).unwrap();
    path
}

impl Lab {
    /// Builds the seed's three sites (configs from e2e/lab with `edit(site, text)` applied)
    /// and starts their agents.
    pub fn new(bins: Bins, tag: &str, edit: impl Fn(&str, String) -> String) -> Lab {
        let mut lab = Lab::build(bins, tag, edit);
        for i in 0..lab.sites.len() {
            lab.start(i);
        }
        lab
    }

    /// Builds the seed's three sites like [`Lab::new`] without starting any agent.
    pub fn build(bins: Bins, tag: &str, edit: impl Fn(&str, String) -> String) -> Lab {
        Lab::prepared(bins, tag, |_| {}, edit)
    }

    /// Builds the seed's three sites like [`Lab::build`] in a fresh folder where `prepare`
    /// writes extra files (such as certificates) before the configs; starts no agent.
    pub fn prepared(
        bins: Bins,
        tag: &str,
        prepare: impl FnOnce(&Path),
        edit: impl Fn(&str, String) -> String,
    ) -> Lab {
        let dir = std::env::temp_dir().join(format!("dmvpn-lab-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        prepare(&dir);
        let inet = Netns::create("dmvpn-inet").unwrap();
        inet.ip(&["link", "add", "inet", "type", "bridge"]).unwrap();
        inet.link_up("inet").unwrap();
        let mut lab = Lab {
            sites: Vec::new(),
            inet,
            dir,
            bins,
        };
        for name in SITES {
            lab.add_site(name, name, |c| edit(name, c));
        }
        lab
    }

    /// Adds site `name` (not started) with the config of e2e/lab/`template`.yaml and `edit`
    /// applied; returns its index.
    pub fn add_site(
        &mut self,
        name: &'static str,
        template: &str,
        edit: impl Fn(String) -> String,
    ) -> usize {
        let i = self.sites.len();
        let router = Netns::create(&format!("dmvpn-{name}")).unwrap();
        let host = Netns::create(&format!("dmvpn-{name}-lan")).unwrap();
        router.veth("wan0", &self.inet, name).unwrap();
        // The underlay behaves like a wire: wan0 cuts the agents' UDP GSO sends into
        // datagrams (as a NIC does before the wire), so that captures on the bridge see
        // the datagrams a link carries rather than one super-packet.
        router
            .ip(&["link", "set", "wan0", "gso_max_segs", "1"])
            .unwrap();
        self.inet
            .ip(&["link", "set", name, "master", "inet"])
            .unwrap();
        router
            .add_addr("wan0", &format!("{}/15", underlay(i)))
            .unwrap();
        router.veth("lan0", &host, "eth0").unwrap();
        router
            .add_addr("lan0", &format!("{}.1/24", lan(i)))
            .unwrap();
        host.add_addr("eth0", &format!("{}.10/24", lan(i))).unwrap();
        host.add_route("default", &["via", &format!("{}.1", lan(i))])
            .unwrap();
        router
            .exec("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"])
            .unwrap();
        let config = write_config(&self.dir, template, name, edit);
        self.sites.push(Site {
            name,
            router,
            host,
            config,
            log: self.dir.join(format!("{name}.log")),
            key_log: self.dir.join(format!("{name}.keys.json")),
            socket: self.dir.join(format!("{name}.sock")),
            pid: None,
        });
        i
    }

    /// Starts the agent of site `i`, its log truncated.
    pub fn start(&mut self, i: usize) {
        let site = &mut self.sites[i];
        let log = File::create(&site.log).unwrap();
        let mut cmd = site.router.command(self.bins.agent.to_str().unwrap());
        cmd.args(["run", "--config"])
            .arg(&site.config)
            .arg("--key-log")
            .arg(&site.key_log)
            .args(["--log-format", "json"])
            .env("DMVPN_LOG", "info,dmvpn_agent::stats=debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        site.pid = Some(site.router.spawn(cmd).unwrap());
    }

    /// Stops site `i` with SIGTERM and returns whether it exited with 0.
    pub fn stop(&mut self, i: usize) -> bool {
        let site = &mut self.sites[i];
        let pid = site.pid.take().unwrap();
        site.router.stop(pid, Signal::Term).unwrap().success()
    }

    /// Kills site `i`'s agent with SIGKILL, as a crash would.
    pub fn kill(&mut self, i: usize) {
        let site = &mut self.sites[i];
        let pid = site.pid.take().unwrap();
        site.router.stop(pid, Signal::Kill).unwrap();
    }

    /// Puts the `dmvpn-impair` relay (`relay`, see [`crate::impair`]) between site `i` and
    /// the underlay, dropping `percent` % of the IP packets each way with `seed`: the site's
    /// veth leaves the bridge `inet` for a bridge `imp`, and the relay bridges `imp` and
    /// `inet` through two TAP devices. Returns the file the relay prints its counters to.
    pub fn impair(&self, i: usize, relay: &Path, percent: u8, seed: u64) -> PathBuf {
        let name = self.sites[i].name;
        let inet = &self.inet;
        inet.ip(&["link", "add", "imp", "type", "bridge"]).unwrap();
        inet.link_up("imp").unwrap();
        inet.ip(&["link", "set", name, "nomaster"]).unwrap();
        inet.ip(&["link", "set", name, "master", "imp"]).unwrap();
        for (tap, bridge) in [("imp-a", "imp"), ("imp-b", "inet")] {
            inet.ip(&["tuntap", "add", "dev", tap, "mode", "tap"])
                .unwrap();
            inet.ip(&["link", "set", tap, "master", bridge]).unwrap();
            inet.link_up(tap).unwrap();
        }
        let out = self.dir.join("impair.log");
        let file = File::create(&out).unwrap();
        let mut cmd = inet.command(relay.to_str().unwrap());
        cmd.args(["imp-a", "imp-b", &percent.to_string(), &seed.to_string()])
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        inet.spawn(cmd).unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("ready")
        {
            assert!(Instant::now() < end, "dmvpn-impair did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    }

    /// The log of site `i` so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.sites[i].log).unwrap_or_default()
    }

    /// Waits up to `limit` for a log line of site `i` containing every one of `parts`.
    pub fn wait_log(&self, i: usize, limit: Duration, parts: &[&str]) -> bool {
        wait(limit, || {
            self.log(i)
                .lines()
                .any(|l| parts.iter().all(|p| l.contains(p)))
        })
    }

    /// The latest value of counter `field` in the `stats` lines of site `i`.
    pub fn stat(&self, i: usize, field: &str) -> u64 {
        self.log(i)
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "stats")
            .find_map(|v| v[field].as_u64())
            .unwrap_or_else(|| panic!("no stats line in {}", self.sites[i].name))
    }

    /// Pings from the LAN host of `from` to the LAN host of `to`; true when all came back.
    pub fn ping(&self, from: usize, to: usize, count: u32) -> bool {
        let dst = format!("{}.10", lan(to));
        let count = count.to_string();
        let out = self.sites[from]
            .host
            .command("ping")
            .args(["-c", &count, "-i", "0.1", "-W", "1", "-q", &dst])
            .output()
            .unwrap();
        out.status.success()
    }

    /// `dmvpnctl show <what> -o json` against site `i`'s admin socket.
    pub fn show(&self, i: usize, what: &[&str]) -> serde_json::Value {
        self.try_show(i, what).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Lab::show`], or the error of dmvpnctl (such as an agent not listening yet).
    pub fn try_show(&self, i: usize, what: &[&str]) -> Result<serde_json::Value, String> {
        let out = Command::new(&self.bins.dmvpnctl)
            .arg("--socket")
            .arg(&self.sites[i].socket)
            .arg("show")
            .args(what)
            .args(["-o", "json"])
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// `dmvpnctl <args>` against site `i`'s admin socket: its stdout.
    ///
    /// # Panics
    /// When dmvpnctl fails, with its stderr.
    pub fn ctl(&self, i: usize, args: &[&str]) -> String {
        let out = Command::new(&self.bins.dmvpnctl)
            .arg("--socket")
            .arg(&self.sites[i].socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Site `i`'s IPsec SA pairs (`show crypto ipsec sa`): peer → outbound SPI.
    pub fn ipsec_sas(&self, i: usize) -> BTreeMap<String, String> {
        let v = self.show(i, &["crypto", "ipsec", "sa"]);
        v["sas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sa| {
                let s = |k: &str| sa[k].as_str().unwrap().to_owned();
                (s("peer"), s("outboundSpi"))
            })
            .collect()
    }

    /// Scrapes `url` (a Prometheus text endpoint) with curl inside site `i`'s router
    /// namespace: series (name and labels as written) → value.
    pub fn scrape(&self, i: usize, url: &str) -> BTreeMap<String, f64> {
        let out = self.sites[i]
            .router
            .exec("curl", &["-sf", "--max-time", "5", url])
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series.to_owned(), value.parse().unwrap())
            })
            .collect()
    }

    /// The remote addresses of site `i`'s established IKE SAs.
    pub fn ike_peers(&self, i: usize) -> Vec<String> {
        let v = self.show(i, &["crypto", "ikev2", "sa"]);
        v["sas"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|sa| sa["state"] == "established")
            .map(|sa| sa["remote"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits up to `limit` for an established IKE SA of site `i` with `peer` (address:port).
    pub fn wait_ike(&self, i: usize, peer: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.ike_peers(i).iter().any(|p| p == peer) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `limit` for site `i` to log its registration with the NHS.
    pub fn registered(&self, i: usize, limit: Duration) -> bool {
        self.wait_log(i, limit, &["registered with NHS"])
    }

    /// Asserts that both spokes register with the hub within `limit`, showing the log of
    /// the one that did not.
    pub fn assert_spokes_registered(&self, limit: Duration) {
        for spoke in [SPOKE1, SPOKE2] {
            assert!(self.registered(spoke, limit), "{}", self.log(spoke));
        }
    }

    /// The routes the agent of site `i` installed (protocol 212).
    pub fn routes(&self, i: usize) -> String {
        self.sites[i]
            .router
            .ip(&["route", "show", "proto", "212"])
            .unwrap()
    }

    /// Whether site `i`'s router has the tunnel device.
    pub fn has_tun(&self, i: usize) -> bool {
        self.sites[i]
            .router
            .ip(&["link", "show"])
            .unwrap()
            .contains("dmvpn0")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The namespaces stop the agents; the logs stay only on failure.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("agent logs kept in {}", self.dir.display());
        }
    }
}

/// The path of testkit binary `name` (such as `dmvpn-impair`) beside the running test's
/// folder (`target/<profile>/deps/..`), where `cargo test --workspace` builds it.
///
/// # Panics
/// When it was not built, saying how to build it.
pub fn testkit_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: cargo build -p dmvpn-testkit --bin {name} (cargo test --workspace \
         builds it)",
        path.display()
    );
    path
}

/// Whether the lab cannot run here (not root, or no ping); says so when it cannot.
pub fn skip_without_root() -> bool {
    if !is_root() || Command::new("ping").arg("-V").output().is_err() {
        eprintln!("SKIPPED: needs root (namespaces, TUN devices, routes) and ping");
        return true;
    }
    false
}
