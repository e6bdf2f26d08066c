//! dmvpn-ike and dmvpn-esp against strongSwan (issue 4, "Interop"): our engine, run by the
//! `dmvpn-ike-peer` driver in one network namespace, and charon with kernel-libipsec in
//! another (../shared/interop/README.md), joined by a veth on 198.18.x addresses.
//!
//! Each test has its own namespaces, charon and driver; everything is stopped by Drop. charon's
//! log and `swanctl --list-sas` are strongSwan's word, the driver's summary ours; tshark judges
//! the capture with our key log, and our keys are compared with the keys charon logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use dmvpn_interop::summary::Summary;
use dmvpn_testkit::capture::Capture;
use dmvpn_testkit::judge::judge;
use dmvpn_testkit::keylog::KeyLog;
use dmvpn_testkit::netns::{Netns, Signal};
use dmvpn_testkit::strongswan::{
    Charon, CharonConfig, ChildSa, Connection, IkeSa, Psk, Sa, lab_available,
};

const PEER_BIN: &str = env!("CARGO_BIN_EXE_dmvpn-ike-peer");
const GRE_BIN: &str = env!("CARGO_BIN_EXE_dmvpn-interop-gre");
const PSK: &[u8] = b"interop lab psk: not a secret";
/// How long a condition may take to hold (generous: CI machines are shared).
const PATIENCE: Duration = Duration::from_secs(10);
/// USE_TRANSPORT_MODE (RFC 7296 section 3.10.1).
const USE_TRANSPORT_MODE: &str = "16391";

/// Two namespaces joined by a veth: ours at 198.18.N.1, strongSwan's at 198.18.N.2.
struct Lab {
    us: Netns,
    swan: Netns,
    our_addr: IpAddr,
    swan_addr: IpAddr,
    dir: PathBuf,
}

impl Lab {
    fn new(subnet: u8) -> Lab {
        let us = Netns::create("dmvpn-iop").unwrap();
        let swan = Netns::create("dmvpn-iop").unwrap();
        us.veth("iop0", &swan, "iop1").unwrap();
        let our_addr: IpAddr = format!("198.18.{subnet}.1").parse().unwrap();
        let swan_addr: IpAddr = format!("198.18.{subnet}.2").parse().unwrap();
        us.add_addr("iop0", &format!("{our_addr}/24")).unwrap();
        swan.add_addr("iop1", &format!("{swan_addr}/24")).unwrap();
        let dir = std::env::temp_dir().join(format!("dmvpn-iop-{}", us.name()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("psk"), PSK).unwrap();
        Lab {
            us,
            swan,
            our_addr,
            swan_addr,
            dir,
        }
    }

    /// The DMVPN shape on strongSwan's side: PSK, GRE selectors, tunnel mode, UDP encap.
    fn connection(&self) -> Connection {
        Connection::psk_gre("gre", self.swan_addr, self.our_addr, Psk::new(PSK.to_vec()))
    }

    fn charon(&self, connection: Connection) -> Charon<'_> {
        let charon = Charon::start(
            &self.swan,
            &CharonConfig {
                connections: vec![connection],
            },
        )
        .unwrap();
        charon.load_all().unwrap();
        charon
    }

    /// Starts our driver with `args` after the common ones (address, PSK, key log, control
    /// socket, a quick probe rate).
    fn peer(&self, args: &[&str]) -> Peer<'_> {
        Peer::start(self, args)
    }

    /// Sends `count` GRE probes from strongSwan's namespace to us (through libipsec's ESP).
    fn swan_sends(&self, count: u32) {
        self.swan
            .exec(
                GRE_BIN,
                &["send", &self.our_addr.to_string(), &count.to_string()],
            )
            .unwrap();
    }

    /// Runs `send` while a raw GRE socket in strongSwan's namespace counts probes; returns
    /// how many of `count` arrived there in clear (libipsec decrypted them).
    fn swan_receives(&self, count: u64, send: impl FnOnce()) -> u64 {
        let ready = self.dir.join("gre-ready");
        let _ = std::fs::remove_file(&ready);
        std::thread::scope(|s| {
            let receiver = s.spawn(|| {
                self.swan
                    .exec(
                        GRE_BIN,
                        &["recv", &count.to_string(), "8000", &ready.to_string_lossy()],
                    )
                    .unwrap()
            });
            let deadline = Instant::now() + PATIENCE;
            while !ready.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            send();
            let out = receiver.join().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Our driver, running in our namespace.
struct Peer<'lab> {
    lab: &'lab Lab,
    pid: Option<u32>,
    client: UnixDatagram,
    control: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    key_log: PathBuf,
}

impl<'lab> Peer<'lab> {
    fn start(lab: &'lab Lab, args: &[&str]) -> Self {
        let control = lab.dir.join("control.sock");
        let client_path = lab.dir.join("client.sock");
        let stdout = lab.dir.join("peer.stdout");
        let stderr = lab.dir.join("peer.stderr");
        let key_log = lab.dir.join("keys.json");
        for p in [&control, &client_path, &key_log] {
            let _ = std::fs::remove_file(p);
        }
        let mut cmd = lab.us.command(PEER_BIN);
        cmd.arg("--local")
            .arg(lab.our_addr.to_string())
            .arg("--psk-file")
            .arg(lab.dir.join("psk"))
            .arg("--key-log")
            .arg(&key_log)
            .arg("--control")
            .arg(&control)
            .args(["--gre-rate", "200"])
            .args(args)
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()));
        let pid = lab.us.spawn(cmd).unwrap();
        let deadline = Instant::now() + PATIENCE;
        while !control.exists() {
            assert!(
                lab.us.is_running(pid) && Instant::now() < deadline,
                "the driver did not start: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let client = UnixDatagram::bind(&client_path).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        Peer {
            lab,
            pid: Some(pid),
            client,
            control,
            stdout,
            stderr,
            key_log,
        }
    }

    /// Sends a control command and returns the answer.
    fn command(&self, text: &str) -> String {
        self.client.send_to(text.as_bytes(), &self.control).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let n = self.client.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn run(&self, text: &str) {
        assert_eq!(self.command(text), "ok", "{text}");
    }

    fn status(&self) -> Summary {
        serde_json::from_str(&self.command("status")).unwrap()
    }

    /// Polls the driver's summary until `done` holds.
    fn wait(&self, what: &str, done: impl Fn(&Summary) -> bool) -> Summary {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let s = self.status();
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: {s:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn key_log(&self) -> KeyLog {
        KeyLog::read(&self.key_log).unwrap()
    }

    /// Stops the driver with SIGTERM and returns the summary it printed last.
    fn stop(mut self) -> Summary {
        let pid = self.pid.take().unwrap();
        let status = self.lab.us.stop(pid, Signal::Term).unwrap();
        assert!(status.success(), "driver exit: {status}");
        self.printed_summary()
    }

    /// Waits for the driver to exit by itself (`--run-for`) and returns its summary.
    fn exited(mut self) -> Summary {
        let pid = self.pid.take().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while self.lab.us.is_running(pid) {
            assert!(
                Instant::now() < deadline,
                "the driver did not exit by itself"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = self.lab.us.stop(pid, Signal::Term).unwrap();
        assert!(status.success(), "driver exit: {status}");
        self.printed_summary()
    }

    fn printed_summary(&self) -> Summary {
        let out = std::fs::read_to_string(&self.stdout).unwrap();
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    }
}

impl Drop for Peer<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.lab.us.stop(pid, Signal::Term);
        }
        if std::thread::panicking() {
            eprintln!(
                "driver log:\n{}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
    }
}

/// Polls charon's SAs until `done` holds (charon acts asynchronously after swanctl returns).
fn wait_swan(charon: &Charon<'_>, what: &str, done: impl Fn(&[IkeSa]) -> bool) -> Vec<IkeSa> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let sas = charon.list_sas().unwrap();
        if done(&sas) {
            return sas;
        }
        assert!(Instant::now() < deadline, "{what}: {sas:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// charon's one established IKE_SA and its one installed CHILD_SA.
fn swan_established(charon: &Charon<'_>) -> (IkeSa, ChildSa) {
    let sas = wait_swan(charon, "established", |sas| {
        sas.len() == 1
            && sas[0].state == "ESTABLISHED"
            && sas[0]
                .children
                .iter()
                .filter(|c| c.state == "INSTALLED")
                .count()
                == 1
    });
    let ike = sas[0].clone();
    let child = ike
        .children
        .iter()
        .find(|c| c.state == "INSTALLED")
        .unwrap()
        .clone();
    (ike, child)
}

/// The DMVPN shape as charon installed it: GRE host selectors, tunnel mode in UDP.
fn assert_gre_tunnel(lab: &Lab, child: &ChildSa) {
    assert_eq!(
        (child.mode.as_str(), child.protocol.as_str(), child.encap),
        ("TUNNEL", "ESP", true),
        "INSTALLED, TUNNEL-in-UDP: {child:#?}"
    );
    assert_eq!(child.local_ts, [format!("{}/32[gre]", lab.swan_addr)]);
    assert_eq!(child.remote_ts, [format!("{}/32[gre]", lab.our_addr)]);
}

fn hex32(spi: u32) -> String {
    format!("{spi:#010x}")
}

/// Our key log has the keys charon logged, for the same SPIs: every ESP SA charon installed
/// and every IKE SA it listed.
fn assert_same_keys(ours: &KeyLog, charon: &Charon<'_>) -> (usize, usize) {
    let theirs = charon.key_log();
    assert!(!theirs.esp_sas.is_empty(), "charon logged no ESP keys");
    for esp in &theirs.esp_sas {
        let mine = ours
            .esp_sas
            .iter()
            .find(|e| e.spi == esp.spi && e.dst == esp.dst)
            .unwrap_or_else(|| panic!("ESP SA {} -> {} not in our key log", esp.spi, esp.dst));
        assert_eq!(mine, esp, "ESP SA {}", esp.spi);
    }
    assert_eq!(ours.esp_sas.len(), theirs.esp_sas.len(), "ESP SAs");
    assert!(!theirs.ike_sas.is_empty(), "charon listed no IKE SA");
    for ike in &theirs.ike_sas {
        let mine = ours
            .ike_sas
            .iter()
            .find(|i| i.spi_i == ike.spi_i && i.spi_r == ike.spi_r)
            .unwrap_or_else(|| panic!("IKE SA {}_i not in our key log", ike.spi_i));
        assert_eq!(mine, ike, "IKE SA {}_i", ike.spi_i);
    }
    (theirs.ike_sas.len(), theirs.esp_sas.len())
}

/// For each IKE proposal we support, we initiate and strongSwan responds: charon selects that
/// proposal (also after asking for another group with INVALID_KE_PAYLOAD), the CHILD_SA has GRE selectors in tunnel mode, ESP goes both ways with the
/// matching ESP cipher, and both sides hold the same keys.
#[test]
fn we_initiate_with_every_ike_proposal() {
    if !lab_available() {
        return;
    }
    let started = Instant::now();
    // (our IKE proposal, charon's, ESP, what charon selects, ESP as listed)
    let cases = [
        (
            "aes256gcm16-prfsha384-x25519",
            "aes256gcm16-prfsha384-x25519",
            "aes256gcm16",
            "AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519",
            "AES_GCM_16_256",
        ),
        (
            "aes128gcm16-prfsha256-ecp256",
            "aes128gcm16-prfsha256-ecp256",
            "aes128gcm16",
            "AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256",
            "AES_GCM_16_128",
        ),
        (
            "aes256gcm16-prfsha512-ecp384",
            "aes256gcm16-prfsha512-ecp384",
            "aes256gcm16",
            "AES_GCM_16_256/PRF_HMAC_SHA2_512/ECP_384",
            "AES_GCM_16_256",
        ),
        (
            "chacha20poly1305-prfsha256-x25519",
            "chacha20poly1305-prfsha256-x25519",
            "chacha20poly1305",
            "CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE_25519",
            "CHACHA20_POLY1305",
        ),
        // Our first group is not charon's: it answers INVALID_KE_PAYLOAD and we retry with
        // the group it asks for (RFC 7296 section 1.2).
        (
            "aes256gcm16-prfsha256-x25519-ecp384",
            "aes256gcm16-prfsha256-ecp384",
            "aes256gcm16",
            "AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_384",
            "AES_GCM_16_256",
        ),
    ];
    std::thread::scope(|s| {
        for (i, (ike, swan_ike, esp, selected, esp_name)) in cases.into_iter().enumerate() {
            s.spawn(move || {
                let lab = Lab::new(40 + i as u8);
                let mut conn = lab.connection();
                conn.proposals = vec![swan_ike.to_owned()];
                conn.children[0].esp_proposals = vec![esp.to_owned()];
                let charon = lab.charon(conn);
                let peer = lab.peer(&[
                    "--initiate",
                    &lab.swan_addr.to_string(),
                    "--ike-proposal",
                    ike,
                    "--esp-proposal",
                    esp,
                    "--mode",
                    "tunnel",
                ]);
                let (sa, child) = swan_established(&charon);
                let log = charon.log();
                assert!(
                    log.contains(&format!("selected proposal: IKE:{selected}")),
                    "{ike}: {log}"
                );
                assert!(
                    log.lines()
                        .any(|l| l.contains("IKE_SA gre[") && l.contains("] established between")),
                    "{log}"
                );
                if ike != swan_ike {
                    assert!(
                        log.contains("DH group CURVE_25519 unacceptable, requesting ECP_384"),
                        "{log}"
                    );
                }
                let ts = format!("TS {}/32[gre] === {}/32[gre]", lab.swan_addr, lab.our_addr);
                assert!(
                    log.lines()
                        .any(|l| l.contains("CHILD_SA gre{1} established") && l.contains(&ts)),
                    "{log}"
                );
                assert!(!sa.initiator && sa.nat_any && sa.local.1 == 4500, "{sa:#?}");
                assert_eq!(child.encr, esp_name);
                assert_gre_tunnel(&lab, &child);
                let ours = peer.wait("child up", |s| s.children.len() == 1);
                assert_eq!(ours.children[0].mode, "tunnel");
                assert_eq!(ours.children[0].encr, esp_name);
                assert_eq!(ours.children[0].inbound_spi, hex32(child.spi_out));
                assert_eq!(ours.children[0].outbound_spi, hex32(child.spi_in));

                // ESP both ways, counted on both sides.
                assert_eq!(lab.swan_receives(5, || peer.run("send 5")), 5, "{ike}");
                lab.swan_sends(3);
                peer.wait("3 probes from strongSwan", |s| s.gre_received == 3);
                let (_, child) = swan_established(&charon);
                assert_eq!((child.packets_in, child.packets_out), (5, 3), "{ike}");
                assert_same_keys(&peer.key_log(), &charon);
                let summary = peer.stop();
                assert_eq!((summary.sealed, summary.opened), (5, 3));
                assert!(summary.esp_drops.is_empty(), "{summary:#?}");
                assert!(summary.ike_drops.is_empty(), "{summary:#?}");
            });
        }
    });
    println!("every proposal took {:?}", started.elapsed());
}

/// Runs `action` while GRE probes flow both ways (`n` from us, `n` from strongSwan, sent
/// after the action started) and checks that every one arrived: a rekey is make-before-break.
fn traffic_during(lab: &Lab, peer: &Peer<'_>, n: u32, what: &str, action: impl FnOnce()) {
    let started = Instant::now();
    let before = peer.status();
    let got = lab.swan_receives(u64::from(n), || {
        peer.run(&format!("send {n}"));
        action();
        lab.swan_sends(n);
    });
    assert_eq!(got, u64::from(n), "{what}: probes strongSwan received");
    let after = peer.wait(what, |s| {
        s.gre_received >= before.gre_received + u64::from(n)
    });
    assert_eq!(
        after.gre_received,
        before.gre_received + u64::from(n),
        "{what}: probes we received"
    );
    assert_eq!(after.sealed, before.sealed + u64::from(n), "{what}");
    println!("{what}: {:?}", started.elapsed());
}

/// The CHILD_SAs of `sa` that charon has installed (rekeyed ones stay listed a while: charon's
/// `delete_rekeyed_delay`).
fn installed(sa: &IkeSa) -> Vec<ChildSa> {
    sa.children
        .iter()
        .filter(|c| c.state == "INSTALLED")
        .cloned()
        .collect()
}

/// The installed CHILD_SA of charon's one IKE_SA once `done` holds for it.
fn swan_child_where(charon: &Charon<'_>, what: &str, done: impl Fn(&ChildSa) -> bool) -> ChildSa {
    let sas = wait_swan(charon, what, |sas| {
        sas.len() == 1 && sas[0].state == "ESTABLISHED" && {
            let children = installed(&sas[0]);
            children.len() == 1 && done(&children[0])
        }
    });
    installed(&sas[0]).remove(0)
}

/// One whole life with us as initiator, captured on our veth: our transport-mode request
/// falls back to tunnel mode (libipsec answers without USE_TRANSPORT_MODE); ESP both ways;
/// CHILD and IKE SA rekeyed by us and by strongSwan with traffic flowing and nothing lost;
/// delete by us. tshark decrypts every IKE message and checks every ESP ICV with our key log,
/// and our keys are charon's.
#[test]
fn we_initiate_fall_back_to_tunnel_rekey_both_ways_delete_judged_by_tshark() {
    if !lab_available() {
        return;
    }
    let started = Instant::now();
    let lab = Lab::new(50);
    let pcap = lab.dir.join("life.pcap");
    let capture = Capture::start(&lab.us, "iop0", &pcap).unwrap();
    let charon = lab.charon(lab.connection());
    let swan = lab.swan_addr.to_string();
    let peer = lab.peer(&["--initiate", &swan, "--rekey-overlap", "0.3"]);

    // Transport requested (the default), tunnel agreed.
    let (ike0, child0) = swan_established(&charon);
    assert_gre_tunnel(&lab, &child0);
    let ours = peer.wait("child up", |s| s.children.len() == 1);
    assert_eq!(ours.children[0].mode, "tunnel", "{ours:#?}");
    assert_eq!(ours.children[0].inbound_spi, hex32(child0.spi_out));
    assert!(!ike0.initiator);

    // ESP both ways: strongSwan's counters and its raw GRE socket; ours.
    assert_eq!(lab.swan_receives(10, || peer.run("send 10")), 10);
    lab.swan_sends(7);
    peer.wait("7 probes from strongSwan", |s| s.gre_received == 7);
    let (_, child) = swan_established(&charon);
    assert_eq!((child.packets_in, child.packets_out), (10, 7));

    // CHILD_SA rekey by us: new SPIs on both sides, the old SA deleted, nothing lost.
    traffic_during(&lab, &peer, 40, "CHILD rekey by us", || {
        peer.run("rekey-child")
    });
    let child1 = swan_child_where(&charon, "CHILD rekey by us", |c| c.spi_in != child0.spi_in);
    peer.wait("old CHILD_SA gone (ours)", |s| {
        s.children.len() == 1 && s.children[0].inbound_spi == hex32(child1.spi_out)
    });

    // IKE SA rekey by us: new IKE SPIs, the CHILD_SA moves over.
    traffic_during(&lab, &peer, 40, "IKE rekey by us", || peer.run("rekey-ike"));
    let ike1 = wait_swan(&charon, "IKE rekey by us", |sas| {
        sas.len() == 1 && sas[0].spi_i != ike0.spi_i && sas[0].state == "ESTABLISHED"
    })[0]
        .clone();
    assert_eq!(installed(&ike1)[0].spi_in, child1.spi_in);

    // CHILD_SA rekey by strongSwan.
    traffic_during(&lab, &peer, 40, "CHILD rekey by strongSwan", || {
        charon.rekey(Sa::Child("gre")).unwrap()
    });
    let child2 = swan_child_where(&charon, "CHILD rekey by strongSwan", |c| {
        c.spi_in != child1.spi_in
    });
    peer.wait("CHILD rekey by strongSwan (ours)", |s| {
        s.children.len() == 1 && s.children[0].inbound_spi == hex32(child2.spi_out)
    });

    // IKE SA rekey by strongSwan.
    traffic_during(&lab, &peer, 40, "IKE rekey by strongSwan", || {
        charon.rekey(Sa::Ike("gre")).unwrap()
    });
    let ike2 = wait_swan(&charon, "IKE rekey by strongSwan", |sas| {
        sas.len() == 1 && sas[0].spi_i != ike1.spi_i && sas[0].state == "ESTABLISHED"
    })[0]
        .clone();
    assert_eq!(installed(&ike2)[0].spi_in, child2.spi_in);
    let ours = peer.wait("rekeys counted", |s| {
        s.ike_rekeys == 2 && s.child_rekeys == 2 && s.ike_sas_established == 1
    });
    assert_eq!((ours.ike_sas_up, ours.child_sas_up), (3, 3), "{ours:#?}");

    // Delete by us: both sides forget everything.
    peer.run("delete");
    wait_swan(&charon, "delete by us", <[IkeSa]>::is_empty);
    let ours = peer.wait("delete by us (ours)", |s| {
        s.ike_sas_established == 0 && s.children.is_empty()
    });
    assert_eq!(ours.ike_sas_down.get("Deleted"), Some(&1), "{ours:#?}");
    assert!(charon.log().contains("received DELETE for IKE_SA gre"));
    let keys = peer.key_log();
    let summary = peer.stop();
    let pcap = capture.stop().unwrap();

    // Our keys are charon's, SA by SPI: three IKE SAs, three CHILD_SAs.
    assert_eq!(assert_same_keys(&keys, &charon), (3, 6));
    assert_eq!((keys.ike_sas.len(), keys.esp_sas.len()), (3, 6));

    // tshark decrypts everything with our key log.
    let report = judge(&pcap, &keys).unwrap_or_else(|f| panic!("{f}"));
    println!("judge: {report:?}");
    let esp = summary.sealed + summary.opened;
    assert_eq!((summary.sealed, summary.opened), (170, 167), "{summary:#?}");
    assert_eq!(report.esp_packets as u64, esp);
    assert_eq!(report.esp_icv_good as u64, esp);
    // IKE_AUTH, 4 CREATE_CHILD_SA, 2 deletes of rekeyed IKE SAs, 2 of rekeyed CHILD_SAs and
    // the final delete: each a request and a response.
    assert_eq!(report.ike_encrypted, 20, "{report:?}");
    assert_eq!(report.ike_decrypted, report.ike_encrypted);
    assert_eq!(
        report.ike_messages,
        report.ike_encrypted + 2,
        "IKE_SA_INIT in clear"
    );
    assert!(summary.esp_drops.is_empty(), "{summary:#?}");
    assert!(summary.ike_drops.is_empty(), "{summary:#?}");

    // Our IKE_AUTH request did ask for transport mode (RFC 7296 section 1.3.1).
    let options = dmvpn_testkit::judge::tshark_key_options(&keys).unwrap();
    let notifies = dmvpn_testkit::tshark_fields_where(
        &pcap,
        &options,
        &format!("ip.src == {} && isakmp.exchangetype == 35", lab.our_addr),
        &["isakmp.notify.msgtype"],
    );
    assert!(
        notifies
            .iter()
            .flatten()
            .any(|n| n.split(',').any(|t| t == USE_TRANSPORT_MODE)),
        "{notifies:?}"
    );
    let answers = dmvpn_testkit::tshark_fields_where(
        &pcap,
        &options,
        &format!("ip.src == {} && isakmp.exchangetype == 35", lab.swan_addr),
        &["isakmp.notify.msgtype"],
    );
    assert!(
        !answers
            .iter()
            .flatten()
            .any(|n| n.split(',').any(|t| t == USE_TRANSPORT_MODE)),
        "{answers:?}"
    );
    println!("life took {:?}", started.elapsed());
}

/// strongSwan initiates and we respond (in tunnel mode, as it asks), after a COOKIE
/// challenge; ESP both ways; we rekey
/// the CHILD and IKE SA it made, on the driver's timers (`--rekey-child-after`,
/// `--rekey-ike-after`); then strongSwan deletes the CHILD_SA alone, and the IKE SA.
#[test]
fn strongswan_initiates_we_respond_rekey_on_our_timers_and_it_deletes() {
    if !lab_available() {
        return;
    }
    let started = Instant::now();
    let lab = Lab::new(60);
    let charon = lab.charon(lab.connection());
    let peer = lab.peer(&[
        "--cookie-threshold",
        "0",
        "--rekey-child-after",
        "1",
        "--rekey-ike-after",
        "2",
        "--rekey-overlap",
        "0.3",
    ]);
    charon.initiate("gre").unwrap();
    let (ike0, child0) = swan_established(&charon);
    assert!(ike0.initiator);
    assert_gre_tunnel(&lab, &child0);
    assert!(charon.log().contains("IKE_SA gre[1] established between"));
    let ours = peer.wait("child up", |s| s.children.len() == 1);
    assert_eq!(ours.children[0].mode, "tunnel");
    assert!(ours.events[0].contains("initiator=false"), "{ours:#?}");
    // We demanded a cookie and charon came back with it (RFC 7296 section 2.6).
    assert_eq!(ours.cookies_sent, 1, "{ours:#?}");
    assert_eq!(ours.ike_sent[0], 2, "IKE_SA_INIT answered twice: {ours:#?}");
    assert!(
        charon.log().contains("received COOKIE notify"),
        "{}",
        charon.log()
    );

    assert_eq!(lab.swan_receives(6, || peer.run("send 6")), 6);
    lab.swan_sends(4);
    peer.wait("4 probes from strongSwan", |s| s.gre_received == 4);
    let (_, child) = swan_established(&charon);
    assert_eq!((child.packets_in, child.packets_out), (6, 4));

    // Our timers rekey the CHILD_SA at 1 s and the IKE SA at 2 s.
    let child1 = swan_child_where(&charon, "CHILD rekey on our timer", |c| {
        c.spi_in != child0.spi_in
    });
    let ike1 = wait_swan(&charon, "IKE rekey on our timer", |sas| {
        sas.len() == 1 && sas[0].spi_i != ike0.spi_i && sas[0].state == "ESTABLISHED"
    })[0]
        .clone();
    assert!(!ike1.initiator, "we initiated the rekey: {ike1:#?}");
    assert_eq!(installed(&ike1)[0].spi_in, child1.spi_in);
    traffic_during(&lab, &peer, 20, "after our rekeys", || {});
    peer.wait("rekeys counted", |s| {
        s.child_rekeys == 1 && s.ike_rekeys == 1
    });

    // strongSwan deletes the CHILD_SA, then the IKE SA.
    charon.terminate(Sa::Child("gre")).unwrap();
    let ours = peer.wait("CHILD deleted by strongSwan", |s| s.children.is_empty());
    assert_eq!(
        ours.child_sas_down.get("DeletedByPeer"),
        Some(&1),
        "{ours:#?}"
    );
    assert_eq!(ours.ike_sas_established, 1);
    charon.terminate(Sa::Ike("gre")).unwrap();
    wait_swan(&charon, "IKE deleted by strongSwan", <[IkeSa]>::is_empty);
    let ours = peer.wait("IKE deleted by strongSwan (ours)", |s| {
        s.ike_sas_established == 0
    });
    assert_eq!(
        ours.ike_sas_down.get("DeletedByPeer"),
        Some(&1),
        "{ours:#?}"
    );

    // Two IKE SAs and two CHILD_SAs, with charon's keys.
    assert_eq!(assert_same_keys(&peer.key_log(), &charon), (2, 4));
    let summary = peer.stop();
    assert_eq!((summary.sealed, summary.opened), (26, 24), "{summary:#?}");
    assert!(summary.esp_drops.is_empty(), "{summary:#?}");
    assert!(summary.ike_drops.is_empty(), "{summary:#?}");
    println!("responder life took {:?}", started.elapsed());
}

/// Dead peer detection (RFC 7296 section 2.4) both ways: charon with `dpd_delay` checks us
/// while the SA is idle and we answer; then charon is killed and our own liveness check
/// declares it dead after its retransmissions, taking the CHILD_SA down.
#[test]
fn dead_peer_detection_both_ways() {
    if !lab_available() {
        return;
    }
    let started = Instant::now();
    let lab = Lab::new(70);
    let mut conn = lab.connection();
    conn.dpd_delay = Some(Duration::from_secs(1));
    let charon = lab.charon(conn);
    let swan = lab.swan_addr.to_string();
    let peer = lab.peer(&[
        "--initiate",
        &swan,
        "--dpd",
        "1.5",
        "--retransmit-timeout-ms",
        "200",
        "--retransmit-tries",
        "3",
    ]);
    swan_established(&charon);
    peer.wait("child up", |s| s.children.len() == 1);

    // strongSwan's checks arrive as empty INFORMATIONAL requests, and we answer them.
    let deadline = Instant::now() + PATIENCE;
    while charon
        .log()
        .matches("parsed INFORMATIONAL response")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{}", charon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let ours = peer.status();
    assert!(ours.ike_received[3] >= 2, "{ours:#?}");
    assert!(
        charon.log().contains("sending DPD request"),
        "{}",
        charon.log()
    );
    let (ike, _) = swan_established(&charon);
    assert_eq!(ike.state, "ESTABLISHED");

    // charon dies without a word: our check goes unanswered and the peer is declared dead.
    let killed = Instant::now();
    netns_kill(charon.pid());
    let ours = peer.wait("our DPD notices", |s| s.ike_sas_established == 0);
    assert_eq!(ours.ike_sas_down.get("PeerDead"), Some(&1), "{ours:#?}");
    assert_eq!(ours.child_sas_down.get("PeerDead"), Some(&1), "{ours:#?}");
    assert!(ours.children.is_empty());
    assert!(ours.ike_retransmissions >= 2, "{ours:#?}");
    println!(
        "dead peer noticed after {:?}; DPD test took {:?}",
        killed.elapsed(),
        started.elapsed()
    );
    drop(peer);
    drop(charon);
}

/// Kills a process this test started (charon, by its PID) with SIGKILL: no goodbye.
fn netns_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-s", "KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The driver's flags alone run a whole life, with no control command: initiate, send
/// `--gre-count` probes at `--gre-rate` (200/s here), delete on `--delete-after`, exit on `--run-for` with
/// the summary as its last line.
#[test]
fn flags_alone_initiate_send_delete_and_exit() {
    if !lab_available() {
        return;
    }
    let lab = Lab::new(80);
    let charon = lab.charon(lab.connection());
    let swan = lab.swan_addr.to_string();
    let got = lab.swan_receives(25, || {
        let peer = lab.peer(&[
            "--initiate",
            &swan,
            "--gre-count",
            "25",
            "--delete-after",
            "1",
            "--run-for",
            "2",
        ]);
        let summary = peer.exited();
        assert_eq!(summary.sealed, 25, "{summary:#?}");
        assert_eq!((summary.ike_sas_up, summary.child_sas_up), (1, 1));
        assert_eq!(
            summary.ike_sas_down.get("Deleted"),
            Some(&1),
            "{summary:#?}"
        );
        assert_eq!(summary.ike_sas_established, 0);
        assert!(
            summary
                .events
                .iter()
                .any(|e| e.starts_with("child_sa_down"))
        );
    });
    assert_eq!(got, 25);
    wait_swan(&charon, "deleted on our timer", <[IkeSa]>::is_empty);
    assert!(charon.log().contains("received DELETE for IKE_SA gre"));
}
