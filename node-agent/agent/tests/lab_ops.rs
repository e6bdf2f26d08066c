//! The agent's operational surface on the seed's three sites as real `dmvpn-agent` processes
//! in network namespaces (the topology of `e2e/lab.sh` and tests/lab.rs): `/metrics`
//! scraped over HTTP inside the router namespaces after traffic, `dmvpnctl clear crypto sa`
//! with the SAs rebuilt and pings resuming, the IKE DELETE of a stopping agent, and the lab
//! authenticated with certificates (a CA and router certificates made by the test with
//! rcgen). Needs root, ping and curl; without them each test says so and passes.
//!
//! The lab helpers are a minimal copy of tests/lab.rs's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::certs::Ca;
use dmvpn_testkit::netns::{Netns, Signal, is_root};

const AGENT: &str = env!("CARGO_BIN_EXE_dmvpn-agent");
const DMVPNCTL: &str = env!("CARGO_BIN_EXE_dmvpnctl");
const SITES: [&str; 3] = ["hub", "spoke1", "spoke2"];
const HUB: usize = 0;
const SPOKE1: usize = 1;
const SPOKE2: usize = 2;
/// The agents' default `metrics.listen` (no `metrics` section in e2e/lab/*.yaml).
const METRICS: &str = "http://127.0.0.1:9469/metrics";

struct Site {
    router: Netns,
    host: Netns,
    config: PathBuf,
    log: PathBuf,
    socket: PathBuf,
    pid: Option<u32>,
}

struct Lab {
    // Dropped last: the routers' veths end on its bridge.
    sites: Vec<Site>,
    _inet: Netns,
    dir: PathBuf,
}

fn lan(i: usize) -> String {
    format!("192.168.{}", i + 1)
}

fn underlay(i: usize) -> String {
    format!("198.18.0.{}", i + 1)
}

/// A site's config: e2e/lab/<site>.yaml with its admin socket in `dir` (beside a copy of
/// e2e/lab/dmvpn.psk), and `edit` applied.
fn write_config(dir: &Path, site: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/lab");
    std::fs::copy(lab.join("dmvpn.psk"), dir.join("dmvpn.psk")).unwrap();
    let text = std::fs::read_to_string(lab.join(format!("{site}.yaml"))).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("  socket:") {
            out += &format!("  socket: {}/{site}.sock\n", dir.display());
            continue;
        }
        out += line;
        out.push('\n');
    }
    let path = dir.join(format!("{site}.yaml"));
    std::fs::write(&path, edit(out)).unwrap();
    path
}

impl Lab {
    /// Builds the lab in a fresh folder, where `prepare` writes extra files first, with each
    /// site's config edited by `edit`, and starts the three agents.
    fn new(tag: &str, prepare: impl FnOnce(&Path), edit: impl Fn(&str, String) -> String) -> Lab {
        let dir = std::env::temp_dir().join(format!("dmvpn-labops-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        prepare(&dir);
        let inet = Netns::create("dmvpn-inet").unwrap();
        inet.ip(&["link", "add", "inet", "type", "bridge"]).unwrap();
        inet.link_up("inet").unwrap();
        let mut sites = Vec::new();
        for (i, name) in SITES.into_iter().enumerate() {
            let router = Netns::create(&format!("dmvpn-{name}")).unwrap();
            let host = Netns::create(&format!("dmvpn-{name}-lan")).unwrap();
            router.veth("wan0", &inet, name).unwrap();
            inet.ip(&["link", "set", name, "master", "inet"]).unwrap();
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
            sites.push(Site {
                router,
                host,
                config: write_config(&dir, name, |c| edit(name, c)),
                log: dir.join(format!("{name}.log")),
                socket: dir.join(format!("{name}.sock")),
                pid: None,
            });
        }
        let mut lab = Lab {
            sites,
            _inet: inet,
            dir,
        };
        for i in 0..SITES.len() {
            lab.start(i);
        }
        lab
    }

    fn start(&mut self, i: usize) {
        let site = &mut self.sites[i];
        let log = File::create(&site.log).unwrap();
        let mut cmd = site.router.command(AGENT);
        cmd.args(["run", "--config"])
            .arg(&site.config)
            .args(["--log-format", "json"])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        site.pid = Some(site.router.spawn(cmd).unwrap());
    }

    /// Stops site `i` with SIGTERM and returns whether it exited with 0.
    fn stop(&mut self, i: usize) -> bool {
        let site = &mut self.sites[i];
        let pid = site.pid.take().unwrap();
        site.router.stop(pid, Signal::Term).unwrap().success()
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.sites[i].log).unwrap_or_default()
    }

    /// Waits up to `limit` for a log line of site `i` containing every one of `parts`.
    fn wait_log(&self, i: usize, limit: Duration, parts: &[&str]) -> bool {
        wait(limit, || {
            self.log(i)
                .lines()
                .any(|l| parts.iter().all(|p| l.contains(p)))
        })
    }

    fn registered(&self, i: usize) -> bool {
        self.wait_log(i, Duration::from_secs(5), &["registered with NHS"])
    }

    /// Pings from the LAN host of `from` to the LAN host of `to`; true when all came back.
    fn ping(&self, from: usize, to: usize, count: u32) -> bool {
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

    /// `dmvpnctl <args>` against site `i`'s admin socket: its stdout.
    fn ctl(&self, i: usize, args: &[&str]) -> String {
        let out = Command::new(DMVPNCTL)
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

    /// Site `i`'s IPsec SA pairs: peer → outbound SPI.
    fn ipsec_sas(&self, i: usize) -> BTreeMap<String, String> {
        let out = self.ctl(i, &["show", "crypto", "ipsec", "sa", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
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

    /// Scrapes `/metrics` inside site `i`'s router namespace: series (name and labels as
    /// written) → value.
    fn scrape(&self, i: usize) -> BTreeMap<String, f64> {
        let out = self.sites[i]
            .router
            .exec("curl", &["-sf", "--max-time", "5", METRICS])
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

/// Polls `done` every 20 ms for up to `limit`.
fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
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

fn skip() -> bool {
    let have = |tool: &str, arg: &str| Command::new(tool).arg(arg).output().is_ok();
    if !is_root() || !have("ping", "-V") || !have("curl", "--version") {
        eprintln!("SKIPPED: needs root (namespaces, TUN devices, routes), ping and curl");
        return true;
    }
    false
}

/// The value of the series `name{labels}` (labels as Prometheus writes them, sorted).
fn value(metrics: &BTreeMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {metrics:#?}"))
}

#[test]
fn metrics_move_clear_crypto_sa_rebuilds_and_sigterm_deletes() {
    if skip() {
        return;
    }
    let mut lab = Lab::new("ops", |_| {}, |_, c| c);
    assert!(lab.registered(SPOKE1), "{}", lab.log(SPOKE1));
    assert!(lab.registered(SPOKE2), "{}", lab.log(SPOKE2));
    assert!(lab.ping(HUB, SPOKE1, 3));
    // spoke1 → spoke2 hairpins at the hub, whose redirect brings a shortcut.
    assert!(lab.ping(SPOKE1, SPOKE2, 1));
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(2),
        &["NHRP cache entry", "192.168.3.0/24", "Shortcut"]
    ));
    assert!(lab.ping(SPOKE1, SPOKE2, 3));
    // The snapshot the metrics read refreshes every second.
    std::thread::sleep(Duration::from_millis(1100));

    let hub = lab.scrape(HUB);
    let s1 = "peer=\"198.18.0.2\"";
    for family in ["dmvpn_peer_packets_total", "dmvpn_peer_bytes_total"] {
        for dir in ["rx", "tx"] {
            let v = value(&hub, &format!("{family}{{direction=\"{dir}\",{s1}}}"));
            assert!(v > 0.0, "{family} {dir}: {v}");
        }
    }
    assert!(
        value(
            &hub,
            &format!("dmvpn_esp_packets_total{{direction=\"rx\",{s1}}}")
        ) >= 3.0
    );
    assert!(
        value(
            &hub,
            &format!("dmvpn_esp_packets_total{{direction=\"tx\",{s1}}}")
        ) >= 3.0
    );
    for reason in ["replay", "auth", "no_sa", "queue_full"] {
        value(
            &hub,
            &format!("dmvpn_dataplane_drops_total{{reason=\"{reason}\"}}"),
        );
    }
    assert_eq!(
        value(&hub, &format!("dmvpn_esp_auth_failures_total{{{s1}}}")),
        0.0
    );
    assert!(
        value(
            &hub,
            "dmvpn_nhrp_messages_total{direction=\"received\",type=\"registration_request\"}"
        ) >= 2.0
    );
    assert!(
        value(
            &hub,
            "dmvpn_nhrp_messages_total{direction=\"sent\",type=\"registration_reply\"}"
        ) >= 2.0
    );
    assert!(value(&hub, "dmvpn_nhrp_redirects_sent_total") >= 1.0);
    value(&hub, "dmvpn_nhrp_redirects_suppressed_total");
    assert_eq!(value(&hub, "dmvpn_ike_sas{state=\"established\"}"), 2.0);
    assert!(value(&hub, "dmvpn_forwarded_packets_total") >= 1.0);
    // One IKE handshake per spoke, timed (RFC 7296 sections 1.2 and 2.17).
    assert_eq!(
        value(&hub, "dmvpn_ike_handshake_duration_seconds_count"),
        2.0
    );
    assert!(value(&hub, "dmvpn_ike_handshake_duration_seconds_sum") > 0.0);

    let spoke = lab.scrape(SPOKE1);
    assert_eq!(
        value(
            &spoke,
            "dmvpn_nhrp_nhs_up{nbma=\"198.18.0.1\",nhs=\"10.1.1.1\"}"
        ),
        1.0
    );
    assert!(value(&spoke, "dmvpn_nhrp_shortcuts") >= 1.0);
    assert!(
        value(
            &spoke,
            "dmvpn_nhrp_messages_total{direction=\"sent\",type=\"resolution_request\"}"
        ) >= 1.0
    );
    // The hub and spoke2 (the shortcut's direct SA; both spokes may have started one at
    // once, RFC 7296 section 2.8.1).
    assert!(value(&spoke, "dmvpn_ike_sas{state=\"established\"}") >= 2.0);
    assert!(value(&spoke, "dmvpn_ike_handshake_duration_seconds_count") >= 2.0);

    // clear crypto sa at the hub: DELETEs go, the spokes drop their SAs with the hub at
    // once, and traffic brings new ones.
    let before = lab.ipsec_sas(SPOKE1);
    let old = before["198.18.0.1"].clone();
    assert_eq!(lab.ctl(HUB, &["clear", "crypto", "sa"]), "");
    assert!(
        wait(Duration::from_secs(1), || {
            lab.ipsec_sas(SPOKE1).get("198.18.0.1") != Some(&old)
        }),
        "{:?}\n{}",
        lab.ipsec_sas(SPOKE1),
        lab.log(SPOKE1)
    );
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(1),
        &["IKE SA down", "198.18.0.1", "DeletedByPeer"]
    ));
    assert!(lab.ping(SPOKE1, HUB, 3), "{}", lab.log(SPOKE1));
    let after = lab.ipsec_sas(SPOKE1);
    let new = after.get("198.18.0.1").unwrap();
    assert_ne!(new, &old);
    // The shortcut between the spokes was not the hub's: it stays.
    assert_eq!(after.get("198.18.0.3"), before.get("198.18.0.3"));
    assert!(lab.ping(HUB, SPOKE2, 3));

    // SIGTERM at spoke2: its DELETEs make the hub and spoke1 drop their SAs with it at once.
    assert!(lab.stop(SPOKE2));
    assert!(lab.log(SPOKE2).contains("IKE SAs deleted"));
    assert!(lab.wait_log(
        HUB,
        Duration::from_secs(1),
        &["IKE SA down", "198.18.0.3", "DeletedByPeer"]
    ));
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(1),
        &["IKE SA down", "198.18.0.3", "DeletedByPeer"]
    ));
    assert!(!lab.ipsec_sas(HUB).contains_key("198.18.0.3"));
}

#[test]
fn the_lab_authenticates_with_certificates() {
    if skip() {
        return;
    }
    let prepare = |dir: &Path| {
        let ca = Ca::new("kube-dmvpn lab CA");
        for (i, name) in SITES.into_iter().enumerate() {
            ca.write_router(dir, name, underlay(i).parse().unwrap());
        }
    };
    let lab = Lab::new("certs", prepare, |site, c| {
        c.replace(
            "preSharedKeyFile: dmvpn.psk",
            &format!("certificateFile: {site}.pem\n  privateKeyFile: {site}.key\n  caFile: ca.pem"),
        )
    });
    assert!(lab.registered(SPOKE1), "{}", lab.log(SPOKE1));
    assert!(lab.registered(SPOKE2), "{}", lab.log(SPOKE2));
    // The hub authenticated spoke1 by its certificate (RFC 7427).
    assert!(lab.wait_log(
        HUB,
        Duration::from_secs(1),
        &["IKE SA up", "198.18.0.2", "CN=spoke1"]
    ));
    assert!(lab.ping(SPOKE1, HUB, 3));
    assert!(lab.ping(SPOKE1, SPOKE2, 1));
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(2),
        &["NHRP cache entry", "192.168.3.0/24", "Shortcut"]
    ));
    assert!(lab.ping(SPOKE1, SPOKE2, 3));
    assert!(lab.wait_log(
        SPOKE2,
        Duration::from_secs(1),
        &["IKE SA up", "198.18.0.2", "CN=spoke1"]
    ));
    assert!(!lab.log(HUB).contains("authentication failed"));
}
