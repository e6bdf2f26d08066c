//! The GRE probes of the strongSwan lab (RFC 2784): recognisable GRE packets that the
//! `dmvpn-lab-gre` helper and the IKE interop driver send and count, so that traffic matching
//! GRE traffic selectors can be told apart from anything else a raw socket sees.
//!
//! The helper sends and receives them on a raw IPPROTO_GRE socket:
//!
//! - `dmvpn-lab-gre send DST COUNT` sends COUNT probes to DST;
//! - `dmvpn-lab-gre recv COUNT TIMEOUT_MS READY_FILE` opens the socket, creates READY_FILE,
//!   then prints how many probes arrived (stopping at COUNT or after TIMEOUT_MS).
//!
//! Run inside a namespace with `ip netns exec`; needs root.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// GRE protocol type of a probe: IEEE 802 Local Experimental EtherType 1, so tshark shows
/// data.
pub const PROTOCOL_TYPE: [u8; 2] = [0x88, 0xb5];
/// The bytes a probe's payload starts with.
pub const MARKER: &[u8] = b"dmvpn-lab-gre";
/// Payload bytes after the GRE header.
pub const PAYLOAD_LEN: usize = 64;
/// Bytes of a whole probe: the 4-byte GRE header and the payload.
pub const PROBE_LEN: usize = 4 + PAYLOAD_LEN;

/// Probe number `index`: a GRE header without options (no C/K/S bits, version 0, RFC 2784
/// section 2), the marker, the index big-endian, zeros up to [`PAYLOAD_LEN`].
pub fn probe(index: u32) -> [u8; PROBE_LEN] {
    let mut packet = [0u8; PROBE_LEN];
    packet[2..4].copy_from_slice(&PROTOCOL_TYPE);
    packet[4..4 + MARKER.len()].copy_from_slice(MARKER);
    packet[4 + MARKER.len()..8 + MARKER.len()].copy_from_slice(&index.to_be_bytes());
    packet
}

/// Whether `gre` (a GRE header and its payload) is one of our probes.
pub fn is_probe(gre: &[u8]) -> bool {
    gre.get(2..4) == Some(&PROTOCOL_TYPE[..]) && gre.get(4..4 + MARKER.len()) == Some(MARKER)
}

/// IP protocol number of GRE.
const IPPROTO_GRE: i32 = 47;

fn gre_socket() -> std::io::Result<Socket> {
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_GRE)))
}

fn send(dst: Ipv4Addr, count: u32) -> std::io::Result<()> {
    let socket = gre_socket()?;
    let to = SocketAddrV4::new(dst, 0).into();
    for i in 0..count {
        socket.send_to(&probe(i), &to)?;
    }
    Ok(())
}

fn recv(count: u32, timeout: Duration, ready: &str) -> std::io::Result<u32> {
    let mut socket = gre_socket()?;
    std::fs::write(ready, b"ready\n")?;
    let deadline = Instant::now() + timeout;
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while got < count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        let n = match socket.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(e),
        };
        // A raw IPv4 socket returns the IP header too.
        let packet = &buf[..n];
        let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        if is_probe(packet.get(ihl..).unwrap_or_default()) {
            got += 1;
        }
    }
    Ok(got)
}

/// The helper's command line (`send DST COUNT` or `recv COUNT TIMEOUT_MS READY_FILE`, see
/// the module documentation), for the `dmvpn-lab-gre` binaries.
pub fn main_with_args(args: &[&str]) -> ExitCode {
    let result = match args {
        ["send", dst, count] => match (dst.parse(), count.parse()) {
            (Ok(dst), Ok(count)) => send(dst, count),
            _ => Err(std::io::Error::other("send DST COUNT")),
        },
        ["recv", count, timeout_ms, ready] => match (count.parse(), timeout_ms.parse()) {
            (Ok(count), Ok(ms)) => recv(count, Duration::from_millis(ms), ready).map(|got| {
                println!("{got}");
            }),
            _ => Err(std::io::Error::other("recv COUNT TIMEOUT_MS READY_FILE")),
        },
        _ => Err(std::io::Error::other(
            "usage: dmvpn-lab-gre send DST COUNT | recv COUNT TIMEOUT_MS READY_FILE",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dmvpn-lab-gre: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_recognised_and_nothing_else() {
        let p = probe(7);
        assert!(is_probe(&p));
        assert_eq!(&p[..4], &[0, 0, 0x88, 0xb5]);
        assert_eq!(&p[4 + MARKER.len()..8 + MARKER.len()], &[0, 0, 0, 7]);
        let mut other = p;
        other[3] = 0;
        assert!(!is_probe(&other));
        assert!(!is_probe(&p[..10]));
    }
}
