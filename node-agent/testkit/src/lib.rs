//! Test support shared by the crates' integration tests: reading the reference vectors in
//! ../shared, framing emitted messages into IPv4/IPv6 packets with checksums written out here
//! (so the crates are not judged by their own code), writing pcaps, and running tshark as the
//! judge of every byte we emit. A dev-dependency only; never part of the product.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod capture;
pub mod impair;
pub mod judge;
pub mod keylog;
pub mod lab_gre;
pub mod netns;
pub mod seed_lab;
pub mod strongswan;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

/// The folder of the shared reference vectors, `../shared/vectors` from the repository root.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

/// Reads a `.hex` vector (hex digits, whitespace ignored).
pub fn read_hex(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let digits: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// Internet checksum, written out here so that the tests do not judge the crate by itself.
pub fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (DF, TTL 64) around `payload`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        protocol,
        0,
        0,
    ];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = inet_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet (hop limit 64) around `payload`.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[next_header, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A UDP datagram with a zero checksum (allowed over IPv4, and tshark does not flag it).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut d = Vec::with_capacity(len as usize);
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

/// A UDP datagram over IPv6, with its mandatory checksum (RFC 8200 section 8.1).
pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = udp(src_port, dst_port, payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(d.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    pseudo.extend_from_slice(&d);
    let sum = match inet_checksum(&pseudo) {
        0 => 0xffff,
        s => s,
    };
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    ipv6(src, dst, 17, &d)
}

/// Whether tshark may be missing: only outside CI, where the test then says it skipped.
pub fn tshark_available() -> bool {
    let found = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "tshark is missing in CI: .ci/run must install it (apt-get install tshark)"
        );
        eprintln!(
            "SKIPPED: tshark is not installed here (apt-get install tshark); CI runs this test"
        );
    }
    found
}

/// Writes raw IP packets (LINKTYPE_RAW) to a fresh pcap file and returns its path.
pub fn write_pcap(name: &str, packets: &[Vec<u8>]) -> PathBuf {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("dmvpn-{name}-{}.pcap", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let header = PcapHeader {
        datalink: DataLink::RAW,
        ..Default::default()
    };
    let mut writer = PcapWriter::with_header(file, header).unwrap();
    for (i, p) in packets.iter().enumerate() {
        let ts = std::time::Duration::from_millis(i as u64);
        writer
            .write_packet(&PcapPacket::new(ts, p.len() as u32, p))
            .unwrap();
    }
    path
}

/// The tshark options every judgement uses: Cisco's authentication layout (see
/// ../shared/interop/README.md), and IPv4 and UDP checksums verified (a bad one is then an
/// expert error).
const TSHARK_OPTIONS: &[&str] = &[
    "-o",
    "nhrp.auth_ext_has_addr:FALSE",
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
];

/// Runs tshark over `pcap` and returns, per packet, the values of `fields` (all occurrences
/// of a field joined by `,`).
pub fn tshark_fields(pcap: &std::path::Path, fields: &[&str]) -> Vec<Vec<String>> {
    tshark_fields_with(pcap, &[], fields)
}

/// [`tshark_fields`] with extra tshark options (`-o` preferences such as ESP SAs).
pub fn tshark_fields_with(
    pcap: &std::path::Path,
    options: &[String],
    fields: &[&str],
) -> Vec<Vec<String>> {
    tshark_fields_where(pcap, options, "", fields)
}

/// [`tshark_fields_with`] for the packets that match the display filter `filter` (all when
/// empty).
pub fn tshark_fields_where(
    pcap: &std::path::Path,
    options: &[String],
    filter: &str,
    fields: &[&str],
) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(TSHARK_OPTIONS)
        .args(options);
    if !filter.is_empty() {
        cmd.args(["-Y", filter]);
    }
    cmd.args([
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Asserts that tshark finds no malformed packet and no expert error in `pcap`, printing its
/// verbose dissection of the offenders when it does.
pub fn assert_tshark_clean(pcap: &std::path::Path) {
    assert_tshark_clean_with(pcap, &[]);
}

/// [`assert_tshark_clean`] with extra tshark options.
pub fn assert_tshark_clean_with(pcap: &std::path::Path, options: &[String]) {
    let filter = "_ws.malformed || _ws.expert.severity == error";
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(TSHARK_OPTIONS)
        .args(options)
        .args(["-Y", filter, "-V"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim().is_empty(),
        "tshark reports malformed packets or expert errors:\n{text}"
    );
}
