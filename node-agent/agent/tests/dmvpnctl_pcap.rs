//! `dmvpnctl pcap` against the reference captures in ../shared/vectors: every frame decodes
//! to the expected layers and every understood layer round-trips byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

/// Runs `dmvpnctl -o json pcap --check-roundtrip FILE`, asserts it succeeded, returns frames.
fn decode(file: PathBuf) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_dmvpnctl"))
        .args(["-o", "json", "pcap", "--check-roundtrip"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dmvpnctl failed on {}: {}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["roundtrip_mismatches"], serde_json::json!([]));
    doc["frames"].as_array().unwrap().clone()
}

fn protocols(frame: &Value) -> Vec<&str> {
    frame["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["protocol"].as_str().unwrap())
        .collect()
}

/// Every layer decoded without error and round-tripped exactly (opaque payloads such as the
/// ICMP inside a traffic indication have nothing to round-trip).
fn assert_all_exact(frames: &[Value]) {
    for frame in frames {
        for layer in frame["layers"].as_array().unwrap() {
            if layer["protocol"] == "payload" {
                continue;
            }
            assert!(
                layer.get("error").is_none(),
                "frame {}: {layer}",
                frame["number"]
            );
            assert_eq!(
                layer["roundtrip"], "exact",
                "frame {}: {layer}",
                frame["number"]
            );
        }
    }
}

#[test]
fn nhrp_vectors_decode_and_round_trip() {
    let frames = decode(vectors().join("nhrp/all-vectors.pcap"));
    assert_eq!(frames.len(), 9);
    for (i, frame) in frames.iter().enumerate() {
        let layers = protocols(frame);
        assert_eq!(&layers[..3], ["ipv4", "gre", "nhrp"], "frame {}", i + 1);
    }
    // Vector 08, the traffic indication, carries the ICMP echo that triggered it.
    assert_eq!(
        protocols(&frames[7]),
        ["ipv4", "gre", "nhrp", "ipv4", "payload"]
    );
    // Vector 07, the error indication, carries the registration request in error, whose
    // wrong password stays hidden in the JSON as everywhere else.
    assert_eq!(protocols(&frames[6]), ["ipv4", "gre", "nhrp", "nhrp"]);
    let json = serde_json::to_string(&frames).unwrap();
    for secret in ["77726f6e67", "406c706861", "wrong", "@lpha"] {
        assert!(
            !json.contains(secret),
            "a password leaked into the JSON: {secret}"
        );
    }
    // Vector 09 is framed with GRE key 100.
    assert_eq!(frames[8]["layers"][1]["fields"]["key"], 100);
    assert_all_exact(&frames);
}

#[test]
fn ike_nat_t_capture_decodes_and_round_trips() {
    let frames = decode(vectors().join("ike-scapy/ikev2_nat_t.pcapng"));
    assert_eq!(frames.len(), 54);
    let mut ike = 0;
    let mut spis = std::collections::BTreeSet::new();
    for frame in &frames {
        let layers = protocols(frame);
        match layers.as_slice() {
            ["ipv4", "udp", "non-esp-marker", "ikev2"] => ike += 1,
            ["ipv4", "udp", "esp"] => {
                spis.insert(
                    frame["layers"][2]["fields"]["spi"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            other => panic!("frame {}: unexpected layers {other:?}", frame["number"]),
        }
    }
    assert_eq!(ike, 30);
    // The six ESP SPIs that ../shared/vectors/ike-scapy/PROVENANCE.md lists.
    let expected = [
        "0x78bd5377",
        "0x958a753b",
        "0xac0faf03",
        "0xb6b5f296",
        "0xc1a9656b",
        "0xc1d717e8",
    ];
    assert_eq!(
        spis.iter().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    assert_all_exact(&frames);
}

#[test]
fn ike_redirect_capture_decodes_and_round_trips() {
    let frames = decode(vectors().join("ike-scapy/ikev2_notify_redirect.pcap"));
    assert_eq!(frames.len(), 4);
    for frame in &frames {
        assert_eq!(protocols(frame), ["ipv4", "udp", "ikev2"]);
        assert_eq!(frame["layers"][2]["roundtrip"], "exact");
    }
    // Frame 1 was captured with its IPv4 and UDP checksums wrong (tshark agrees): reported
    // on the layer, and decoding goes on.
    assert_eq!(frames[0]["layers"][0]["error"], "bad checksum");
    assert_eq!(frames[0]["layers"][1]["error"], "bad checksum (offloaded?)");
    assert_all_exact(&frames[1..]);
}

#[test]
fn text_output_reads_like_a_debug() {
    let out = Command::new(env!("CARGO_BIN_EXE_dmvpnctl"))
        .args(["pcap", "--check-roundtrip"])
        .arg(vectors().join("nhrp/01-registration-request.pcap"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Frame 1: 129 bytes"), "{text}");
    assert!(text.contains("NHRP  [round trip: exact]"), "{text}");
    // Cisco's `debug nhrp packet` layout.
    assert!(
        text.contains("NHRP: Registration Request, packet size: 105"),
        "{text}"
    );
    assert!(
        text.contains(r#"(M) flags: "unique nat ", reqid: 257"#),
        "{text}"
    );
    assert!(
        text.contains("src protocol: 10.251.0.2, dst protocol: 10.251.0.1"),
        "{text}"
    );
    assert!(
        text.contains("prefix: 32, mtu: 1400, hd_time: 7200"),
        "{text}"
    );
    assert!(
        text.contains("1 frames, 0 with a round-trip mismatch"),
        "{text}"
    );
    assert!(
        !text.contains("@lpha"),
        "the NHRP password must not be printed:\n{text}"
    );
}

#[test]
fn corrupt_input_is_reported_not_fatal() {
    // An NHRP vector with one flipped byte: the NHRP checksum no longer verifies.
    let bytes = std::fs::read(vectors().join("nhrp/01-registration-request.pcap")).unwrap();
    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 10;
    corrupt[last] ^= 0x01;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corrupt-nhrp.pcap");
    std::fs::write(&path, &corrupt).unwrap();
    let frames = decode(path);
    let nhrp = &frames[0]["layers"][2];
    assert_eq!(nhrp["protocol"], "nhrp");
    assert_eq!(nhrp["error"], "bad checksum");

    // Not a capture at all: a clear error naming the file, exit status 1.
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("not-a-capture.pcap");
    std::fs::write(&path, b"hello").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dmvpnctl"))
        .arg("pcap")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not-a-capture.pcap"), "{stderr}");
}

/// An IPv4 header with a correct checksum around `payload`.
fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1,
    ];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let mut sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn udp(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&port.to_be_bytes());
    d.extend_from_slice(&port.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

#[test]
fn gre_in_udp_keepalives_and_linux_cooked_captures_decode() {
    use pcap_file::DataLink;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

    // The GRE + NHRP of vector 01 (after its 20-byte IPv4 header), now in UDP 4754 (RFC 8086).
    let vector = std::fs::read(vectors().join("nhrp/01-registration-request.pcap")).unwrap();
    let gre = &vector[24 + 16 + 20..];
    let frames = [ipv4(17, &udp(4754, gre)), ipv4(17, &udp(4500, &[0xff]))];
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sll.pcap");
    let header = PcapHeader {
        datalink: DataLink::LINUX_SLL,
        ..Default::default()
    };
    let mut writer =
        PcapWriter::with_header(std::fs::File::create(&path).unwrap(), header).unwrap();
    for frame in &frames {
        // Linux cooked header: packet type, ARPHRD, address length, address, protocol.
        let mut sll = vec![0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(frame);
        let len = sll.len() as u32;
        writer
            .write_packet(&PcapPacket::new(std::time::Duration::ZERO, len, &sll))
            .unwrap();
    }
    drop(writer);
    let decoded = decode(path);
    assert_eq!(protocols(&decoded[0]), ["ipv4", "udp", "gre", "nhrp"]);
    assert_eq!(protocols(&decoded[1]), ["ipv4", "udp", "nat-keepalive"]);
    assert_all_exact(&decoded);
}
