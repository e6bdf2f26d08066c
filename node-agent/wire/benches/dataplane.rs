#![allow(clippy::unwrap_used)]

//! Criterion benchmarks of the per-packet codecs: what the dataplane does for every packet
//! (IPv4 header, UDP 4500 classification, ESP framing, GRE header). No crypto here; the ESP
//! engine's benchmarks cover seal and open.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmvpn_wire::{esp, gre, ipv4, udp_encap};

/// A 1400-byte inner packet: the size that dominates bulk transfer through the tunnel.
const INNER_LEN: usize = 1400;

fn esp_packet(layout: esp::Layout) -> Vec<u8> {
    let trailer = esp::Trailer::for_payload(INNER_LEN, gre::IP_PROTOCOL, layout.alignment);
    let len = esp::HEADER_LEN + layout.iv_len + INNER_LEN + trailer.buffer_len() + layout.icv_len;
    let mut buf = vec![0u8; len];
    esp::Header {
        spi: 0xc1a9_656b,
        sequence: 7,
    }
    .emit(&mut buf)
    .unwrap();
    buf
}

fn bench_esp(c: &mut Criterion) {
    let layout = esp::Algorithm::AesGcm16.layout().unwrap();
    let packet = esp_packet(layout);
    let mut group = c.benchmark_group("esp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_split", |b| {
        b.iter(|| {
            let p = esp::Packet::new_checked(black_box(&packet[..])).unwrap();
            let (iv, ct, icv) = p.split(layout).unwrap();
            black_box((p.spi(), p.sequence(), iv.len(), ct.len(), icv.len()))
        })
    });
    let mut plain = vec![0u8; INNER_LEN];
    let trailer = esp::Trailer::for_payload(INNER_LEN, gre::IP_PROTOCOL, layout.alignment);
    plain.resize(INNER_LEN + trailer.buffer_len(), 0);
    trailer.emit(&mut plain[INNER_LEN..]).unwrap();
    group.bench_function("trailer_parse", |b| {
        b.iter(|| black_box(esp::Trailer::parse(black_box(&plain)).unwrap().1))
    });
    let mut out = packet.clone();
    group.bench_function("emit_header_trailer", |b| {
        b.iter(|| {
            esp::Header {
                spi: 0xc1a9_656b,
                sequence: black_box(8),
            }
            .emit(&mut out)
            .unwrap();
            let t = esp::Trailer::for_payload(black_box(INNER_LEN), gre::IP_PROTOCOL, 4);
            let at = esp::HEADER_LEN + layout.iv_len + INNER_LEN;
            t.emit(&mut out[at..]).unwrap();
        })
    });
    group.finish();
}

fn bench_gre(c: &mut Criterion) {
    let repr = gre::Repr {
        protocol: gre::Protocol::Ipv4,
        checksum: false,
        key: Some(100),
        sequence: None,
    };
    let mut packet = vec![0u8; repr.buffer_len() + INNER_LEN];
    repr.emit(&mut packet).unwrap();
    let mut group = c.benchmark_group("gre");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse", |b| {
        b.iter(|| {
            let p = gre::Packet::new_checked(black_box(&packet[..])).unwrap();
            black_box(gre::Repr::parse(&p).unwrap())
        })
    });
    group.bench_function("emit", |b| {
        b.iter(|| black_box(&repr).emit(&mut packet).unwrap())
    });
    group.finish();
}

fn bench_ip_and_udp_encap(c: &mut Criterion) {
    let repr = ipv4::Repr {
        src: Ipv4Addr::new(198, 18, 0, 1),
        dst: Ipv4Addr::new(198, 18, 0, 2),
        protocol: 17,
        tos: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        ttl: 64,
        options: &[],
        payload_len: INNER_LEN,
    };
    let mut packet = vec![0u8; repr.buffer_len() + INNER_LEN];
    repr.emit(&mut packet).unwrap();
    let esp = esp_packet(esp::Algorithm::AesGcm16.layout().unwrap());
    let mut group = c.benchmark_group("ip");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ipv4_parse", |b| {
        b.iter(|| {
            let p = ipv4::Packet::new_checked(black_box(&packet[..])).unwrap();
            black_box(ipv4::Repr::parse(&p).unwrap())
        })
    });
    group.bench_function("ipv4_emit", |b| {
        b.iter(|| black_box(&repr).emit(&mut packet).unwrap())
    });
    group.bench_function("udp_encap_classify", |b| {
        b.iter(|| black_box(udp_encap::Datagram::parse(black_box(&esp)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench_esp, bench_gre, bench_ip_and_udp_encap);
criterion_main!(benches);
