//! Each drop reason is counted under its label, with an event, and nothing is answered
//! (apart from the Error Indication of an authentication failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use dmvpn_nhrp::{DropReason, Engine, Event, SplitMix64};
use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    Address, AddressFamily, Cie, Extension, ExtensionBody, Message, NbmaAddress, PROTOCOL_IPV4,
    PROTOCOL_IPV6, Registration, RegistrationFlags, Repr,
};
use sim::seed;

const FROM: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn request(
    src: Address<'static>,
    dst: Address<'static>,
    cies: &'static [Cie<'static>],
) -> Repr<'static> {
    Repr {
        afn: AddressFamily::Ipv4,
        protocol_type: PROTOCOL_IPV4,
        protocol_snap: [0; 5],
        hop_count: 1,
        message: Message::RegistrationRequest(Registration {
            flags: RegistrationFlags::UNIQUE | RegistrationFlags::NAT,
            request_id: 7,
            src_nbma: NbmaAddress::from(Address::Ipv4(FROM)),
            src_nbma_sub: NbmaAddress::NONE,
            src_proto: src,
            dst_proto: dst,
            cies: Seq::Items(cies),
        }),
        extensions: Some(Seq::Items(&[])),
    }
}

const CIES: &[Cie<'static>] = &[Cie::request(0xff, 0, 7200)];

fn bytes(repr: &Repr<'_>) -> Vec<u8> {
    let mut b = vec![0; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    b
}

/// Feeds `packet` to `engine` and returns the drop reasons reported and whether anything
/// was sent.
fn feed(engine: &mut Engine, packet: &[u8]) -> (Vec<DropReason>, usize) {
    engine.handle_packet(Instant::now(), FROM.into(), packet);
    let mut sent = 0;
    while engine.poll_transmit().is_some() {
        sent += 1;
    }
    let mut reasons = Vec::new();
    while let Some(e) = engine.poll_event() {
        if let Event::PacketDropped { from, reason } = e {
            assert_eq!(from, IpAddr::from(FROM));
            reasons.push(reason);
        }
    }
    (reasons, sent)
}

fn hub(password: Option<&[u8]>) -> Engine {
    let mut e = Engine::new(seed::hub(password), Box::new(SplitMix64(1)), Instant::now()).unwrap();
    while e.poll_transmit().is_some() {}
    e
}

#[test]
fn every_reason_is_counted() {
    let me = Address::Ipv4(seed::spoke(2));
    let hub_addr = Address::Ipv4(seed::HUB);
    let good = request(me, hub_addr, CIES);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![0u8; 10], DropReason::Malformed),
        (
            bytes(&Repr {
                protocol_type: PROTOCOL_IPV6,
                ..good
            }),
            DropReason::WrongAddressFamily,
        ),
        (
            bytes(&request(Address::Ipv6(Ipv6Addr::LOCALHOST), hub_addr, CIES)),
            DropReason::WrongAddressFamily,
        ),
        (
            bytes(&request(me, Address::Ipv4(seed::spoke(3)), CIES)),
            DropReason::NotForUs,
        ),
        (
            bytes(&request(
                Address::Ipv4(Ipv4Addr::new(10, 9, 9, 9)),
                hub_addr,
                CIES,
            )),
            DropReason::SourceOutsideSubnet,
        ),
        (bytes(&request(me, hub_addr, &[])), DropReason::MissingCie),
        (
            bytes(&Repr {
                message: Message::RegistrationReply(match good.message {
                    Message::RegistrationRequest(r) => r,
                    _ => unreachable!(),
                }),
                ..good
            }),
            DropReason::UnknownRequestId,
        ),
    ];
    let mut engine = hub(None);
    for (packet, want) in &cases {
        let (reasons, sent) = feed(&mut engine, packet);
        assert_eq!(reasons, vec![*want]);
        assert_eq!(sent, 0, "{want:?} was answered");
    }
    assert_eq!(engine.counters().dropped_total(), cases.len() as u64);
    assert_eq!(engine.counters().dropped(DropReason::WrongAddressFamily), 2);
    // The good request is accepted.
    assert_eq!(feed(&mut engine, &bytes(&good)), (vec![], 1));

    // A spoke refuses registrations.
    let mut spoke = Engine::new(
        seed::spoke_config(3, seed::spoke_nbma(3), None),
        Box::new(SplitMix64(2)),
        Instant::now(),
    )
    .unwrap();
    while spoke.poll_transmit().is_some() {}
    assert_eq!(
        feed(&mut spoke, &bytes(&good)),
        (vec![DropReason::UnexpectedMessage], 0)
    );

    // Authentication: missing and wrong are told apart, and each gets an Error Indication.
    let mut engine = hub(Some(b"s3cr3t"));
    assert_eq!(
        feed(&mut engine, &bytes(&good)),
        (vec![DropReason::AuthenticationMissing], 1)
    );
    let wrong = [Extension::cleartext_password(b"s3cr3T")];
    let with_wrong = Repr {
        extensions: Some(Seq::Items(&wrong)),
        ..good
    };
    assert_eq!(
        feed(&mut engine, &bytes(&with_wrong)),
        (vec![DropReason::AuthenticationMismatch], 1)
    );
    let right = [Extension::new(ExtensionBody::Authentication {
        auth_type: dmvpn_wire::nhrp::AUTH_CLEARTEXT,
        data: dmvpn_wire::nhrp::AuthData::new(b"s3cr3t"),
    })];
    let with_right = Repr {
        extensions: Some(Seq::Items(&right)),
        ..good
    };
    assert_eq!(feed(&mut engine, &bytes(&with_right)), (vec![], 1));
    let labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(labels.len(), DropReason::ALL.len());
    assert!(
        labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    );
}

#[test]
fn error_indications_are_rate_limited() {
    let mut engine = hub(Some(b"s3cr3t"));
    let good = request(
        Address::Ipv4(seed::spoke(2)),
        Address::Ipv4(seed::HUB),
        CIES,
    );
    let packet = bytes(&good);
    let t0 = Instant::now();
    let mut sent = 0;
    for _ in 0..100 {
        engine.handle_packet(t0, FROM.into(), &packet);
        while engine.poll_transmit().is_some() {
            sent += 1;
        }
    }
    assert_eq!(sent, dmvpn_nhrp::ERROR_INDICATIONS_PER_SECOND);
    assert_eq!(engine.counters().error_indications_suppressed, 90);
    assert_eq!(
        engine.counters().dropped(DropReason::AuthenticationMissing),
        100
    );
    engine.handle_packet(t0 + std::time::Duration::from_secs(1), FROM.into(), &packet);
    assert!(engine.poll_transmit().is_some());
}
