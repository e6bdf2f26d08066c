//! Criterion benchmarks of the ikev2 codec, on real messages of
//! ../shared/vectors/ike-scapy/ikev2_nat_t.pcapng: frame 1 (IKE_SA_INIT request, 300 bytes)
//! and frame 3 (IKE_AUTH request with an SK payload, 1280 bytes).
//!
//! `parse` is what a receiver does first: `Packet::new_checked`, `Repr::parse` (which
//! validates the whole chain) and a walk over every payload, proposal, transform and
//! attribute. `emit` writes a caller-built representation (`Items` form, as an engine
//! builds it), computing every length and Next Payload.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmvpn_wire::Seq;
use dmvpn_wire::ikev2::{Packet, Payload, PayloadBody, Payloads, Proposal, Repr, Transform};
use pcap_file::pcapng::{Block, PcapNgReader};

/// The IKE messages of frames 1 and 3: Ethernet, IPv4 (20 bytes), UDP, non-ESP marker.
fn messages() -> (Vec<u8>, Vec<u8>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/ike-scapy/ikev2_nat_t.pcapng"
    );
    let mut reader = PcapNgReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut frames = Vec::new();
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(epb) = block.unwrap() {
            frames.push(epb.data[14 + 20 + 8 + 4..].to_vec());
        }
    }
    (frames[0].clone(), frames[2].clone())
}

/// Parses and walks everything; returns the number of elements seen.
fn parse_walk(bytes: &[u8]) -> usize {
    let packet = Packet::new_checked(bytes).unwrap();
    let repr = Repr::parse(&packet).unwrap();
    let mut n = 0;
    for p in repr.payloads {
        n += 1;
        if let PayloadBody::Sa(sa) = p.body {
            for proposal in sa {
                for t in proposal.transforms {
                    n += 1 + t.attributes.iter().count();
                }
            }
        }
    }
    n
}

/// The same message with every list in caller-built form.
fn items(repr: Repr<'_>) -> Repr<'_> {
    let payloads: Vec<Payload> = repr
        .payloads
        .iter()
        .map(|p| match p.body {
            PayloadBody::Sa(sa) => {
                let proposals: Vec<Proposal> = sa
                    .iter()
                    .map(|prop| {
                        let transforms: Vec<Transform> = prop
                            .transforms
                            .iter()
                            .map(|t| Transform {
                                attributes: Seq::Items(
                                    t.attributes.iter().collect::<Vec<_>>().leak(),
                                ),
                                ..t
                            })
                            .collect();
                        Proposal {
                            transforms: Seq::Items(transforms.leak()),
                            ..prop
                        }
                    })
                    .collect();
                Payload {
                    body: PayloadBody::Sa(Seq::Items(proposals.leak())),
                    ..p
                }
            }
            _ => p,
        })
        .collect();
    Repr {
        payloads: Payloads::Items(payloads.leak()),
        ..repr
    }
}

fn bench(c: &mut Criterion) {
    let (init, auth) = messages();
    let mut group = c.benchmark_group("ikev2");
    for (name, bytes) in [("ike_sa_init_req", &init), ("ike_auth_sk", &auth)] {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| parse_walk(black_box(bytes)))
        });
        let repr = items(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap());
        let mut buf = vec![0u8; repr.buffer_len()];
        group.bench_function(format!("emit/{name}"), |b| {
            b.iter(|| black_box(&repr).emit(black_box(&mut buf)).unwrap())
        });
        assert_eq!(&buf, bytes);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
