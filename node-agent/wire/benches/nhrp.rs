//! Criterion benchmarks of the NHRP codec on the reference vectors of ../shared/vectors/nhrp:
//! 01 (Registration Request, 105 bytes) and 04 (Resolution Reply, 173 bytes, three CIE-list
//! extensions). Parse = `Packet::new_checked` + `Repr::parse` (checksum included) + walking
//! every CIE and extension; emit = `Repr::emit` of the parsed representation into a buffer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use dmvpn_wire::nhrp::{Message, Packet, Repr};

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/nhrp")
        .join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Parses and touches every element, returning a value that depends on all of them.
fn parse_all(bytes: &[u8]) -> usize {
    let packet = Packet::new_checked(bytes).unwrap();
    let repr = Repr::parse(&packet).unwrap();
    let mut sum = 0usize;
    let cies = match repr.message {
        Message::ResolutionRequest(h) | Message::ResolutionReply(h) => Some(h.cies),
        Message::RegistrationRequest(h) | Message::RegistrationReply(h) => Some(h.cies),
        _ => None,
    };
    for cie in cies.into_iter().flatten() {
        sum += usize::from(cie.holding_time) + cie.proto.len();
    }
    for ext in repr.extensions.into_iter().flatten() {
        sum += usize::from(u16::from(ext.ty()));
        for cie in ext.cies().into_iter().flatten() {
            sum += usize::from(cie.mtu) + cie.nbma.address.len();
        }
    }
    sum
}

fn bench(c: &mut Criterion) {
    for name in ["01-registration-request", "04-resolution-reply"] {
        let bytes = vector(name);
        c.bench_function(&format!("nhrp/parse/{name}"), |b| {
            b.iter(|| parse_all(black_box(&bytes)))
        });
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        let mut out = vec![0u8; repr.buffer_len()];
        c.bench_function(&format!("nhrp/emit/{name}"), |b| {
            b.iter(|| black_box(&repr).emit(black_box(&mut out)).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
