//! Packet capture inside a network namespace with tcpdump, written as a classic pcap file and
//! stopped by PID.
//!
//! tcpdump rather than dumpcap: dumpcap reads libpcap's TPACKET_V3 ring in blocks and, on a
//! veth in this lab, had not yet seen packets sent a second before it was stopped, so they were
//! missing from the file. tcpdump's `--immediate-mode -U` takes and writes each packet as it
//! comes, so stopping right after the last exchange loses nothing; its ring is sized for
//! bursts (see [`Capture::start`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::{Netns, Signal};

/// How long [`Capture::start`] waits for tcpdump to open the interface.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running tcpdump on one interface of a namespace. Dropping it stops tcpdump.
#[derive(Debug)]
pub struct Capture<'ns> {
    netns: &'ns Netns,
    pid: Option<u32>,
    path: PathBuf,
}

impl<'ns> Capture<'ns> {
    /// Starts capturing every packet on `dev` in `netns` into the pcap file `path`, and
    /// returns once tcpdump says it is listening.
    pub fn start(netns: &'ns Netns, dev: &str, path: &Path) -> io::Result<Self> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let log_path = path.with_extension("tcpdump.log");
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = netns.command("tcpdump");
        cmd.args([
            "-n",
            "-i",
            dev,
            // Immediate mode rings hold one snaplen-sized slot per packet: with the default
            // snaplen (256 KiB) and buffer (2 MiB) that is 8 packets, and a burst of ESP lost
            // the rest. No IPv4 packet exceeds 64 KiB; 32 MiB holds 512 of them.
            "-s",
            "65535",
            "-B",
            "32768",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-w",
        ])
        .arg(path)
        .stdout(log.try_clone()?)
        .stderr(log);
        let pid = netns.spawn(cmd)?;
        let capture = Capture {
            netns,
            pid: Some(pid),
            path: path.to_owned(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("listening on")
        {
            if !netns.is_running(pid) || Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "tcpdump on {dev} in {} did not start: {}",
                    netns.name(),
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(capture)
    }

    /// Stops tcpdump (SIGINT, so it flushes the file) and returns the pcap's path.
    pub fn stop(mut self) -> io::Result<PathBuf> {
        if let Some(pid) = self.pid.take() {
            self.netns.stop(pid, Signal::Int)?;
        }
        std::fs::remove_file(self.path.with_extension("tcpdump.log"))?;
        Ok(self.path.clone())
    }
}

impl Drop for Capture<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take()
            && let Err(e) = self.netns.stop(pid, Signal::Int)
        {
            eprintln!("tcpdump {pid} in {}: {e}", self.netns.name());
        }
    }
}
