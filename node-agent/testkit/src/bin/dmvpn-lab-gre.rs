//! Lab helper that sends and receives GRE packets (RFC 2784) on a raw IPPROTO_GRE socket, so
//! that traffic matching GRE traffic selectors flows through a strongSwan lab:
//!
//! - `dmvpn-lab-gre send DST COUNT` sends COUNT GRE packets to DST;
//! - `dmvpn-lab-gre recv COUNT TIMEOUT_MS READY_FILE` opens the socket, creates READY_FILE,
//!   then prints how many of our GRE packets arrived (stopping at COUNT or after TIMEOUT_MS).
//!
//! Run inside a namespace with `ip netns exec`; needs root.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// IP protocol number of GRE.
const IPPROTO_GRE: i32 = 47;
/// GRE protocol type carried: IEEE 802 Local Experimental EtherType 1, so tshark shows data.
const PROTOCOL_TYPE: [u8; 2] = [0x88, 0xb5];
/// Marks our payloads apart from anything else a raw socket sees.
const MARKER: &[u8] = b"dmvpn-lab-gre";
/// Payload length after the GRE header.
const PAYLOAD_LEN: usize = 64;

fn gre_socket() -> std::io::Result<Socket> {
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_GRE)))
}

fn send(dst: Ipv4Addr, count: u32) -> std::io::Result<()> {
    let socket = gre_socket()?;
    let to = SocketAddrV4::new(dst, 0).into();
    for i in 0..count {
        // GRE header without options: no C/K/S bits, version 0 (RFC 2784 section 2).
        let mut packet = vec![0, 0, PROTOCOL_TYPE[0], PROTOCOL_TYPE[1]];
        packet.extend_from_slice(MARKER);
        packet.extend_from_slice(&i.to_be_bytes());
        packet.resize(4 + PAYLOAD_LEN, 0);
        socket.send_to(&packet, &to)?;
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
        let gre = packet.get(ihl..).unwrap_or_default();
        if gre.get(2..4) == Some(&PROTOCOL_TYPE[..]) && gre.get(4..4 + MARKER.len()) == Some(MARKER)
        {
            got += 1;
        }
    }
    Ok(got)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
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
