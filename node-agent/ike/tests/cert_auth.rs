//! Certificate authentication (RFC 7427, RFC 4945) and IKE fragmentation (RFC 7383) between
//! two engines on the simulated network, with chains made by rcgen for each case: P-256 and
//! Ed25519 chains authenticate and report the certified identity; expired, foreign-CA,
//! unbound-ID, tampered and mixed PSK/certificate attempts leave no SA and are counted; a
//! long chain in 576-byte datagrams crosses as fragments both ways through loss, duplication
//! and reordering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use dmvpn_ike::auth::{AuthContext, AuthError};
use dmvpn_ike::cert::{Credentials, PeerIdentity, TrustStore};
use dmvpn_ike::{
    AuthenticatedPeer, Authenticator, Config, ConfigError, DropReason, Event, FailReason, Identity,
    SignatureAuthenticator, WallClock,
};
use dmvpn_wire::ikev2::{AuthMethod, ExchangeType, IdType, Packet, PayloadBody, Repr};
use dmvpn_wire::udp_encap::Datagram;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256, PKCS_ED25519, SanType,
};
use ring::rand::SystemRandom;

const SECOND: Duration = Duration::from_secs(1);

/// 2030-01-01T00:00:00Z: the wall-clock time of the simulation's start, inside the validity
/// of the certificates here unless a test says otherwise.
fn jan_2030() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

type Alg = &'static rcgen::SignatureAlgorithm;
type Issuer = CertifiedIssuer<'static, KeyPair>;

fn ca(alg: Alg, name: &str) -> Issuer {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    CertifiedIssuer::self_signed(params, KeyPair::generate_for(alg).unwrap()).unwrap()
}

fn intermediate(alg: Alg, name: &str, parent: &Issuer) -> Issuer {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "kube-dmvpn test intermediates");
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    CertifiedIssuer::signed_by(params, KeyPair::generate_for(alg).unwrap(), parent).unwrap()
}

/// A node's credentials: an end-entity certificate for `addr` (IP SAN) and
/// `<name>.dmvpn.test` (DNS SAN), valid 2029 to 2031 unless `tweak` says otherwise, followed
/// by the `chain` of intermediates (nearest first).
fn credentials(
    alg: Alg,
    name: &str,
    addr: IpAddr,
    issuer: &Issuer,
    chain: &[&Issuer],
    tweak: impl FnOnce(&mut CertificateParams),
) -> Credentials {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![
        SanType::IpAddress(addr),
        SanType::DnsName(format!("{name}.dmvpn.test").try_into().unwrap()),
    ];
    params.not_before = rcgen::date_time_ymd(2029, 1, 1);
    params.not_after = rcgen::date_time_ymd(2031, 1, 1);
    tweak(&mut params);
    let cert = params.signed_by(&key, issuer).unwrap();
    let mut pem = cert.pem();
    for c in chain {
        pem.push_str(&c.pem());
    }
    Credentials::from_pem(
        pem.as_bytes(),
        key.serialize_pem().as_bytes(),
        &SystemRandom::new(),
    )
    .unwrap()
}

fn authenticator(creds: Credentials, trusted: &Issuer, t0: Instant) -> SignatureAuthenticator {
    SignatureAuthenticator::new(
        creds,
        TrustStore::from_pem(trusted.pem().as_bytes()).unwrap(),
        WallClock {
            instant: t0,
            system: jan_2030(),
        },
    )
}

fn cert_config(local: IpAddr, auth: impl Authenticator + 'static) -> Config {
    let mut c = config(local, b"unused");
    c.authenticator = Arc::new(auth);
    c
}

/// Both nodes with certificates of `alg` from one CA: (hub config, spoke config).
fn cert_pair(alg: Alg, t0: Instant) -> (Config, Config) {
    let root = ca(alg, "kube-dmvpn test CA");
    let hub = credentials(alg, "hub", HUB, &root, &[], |_| {});
    let spoke = credentials(alg, "spoke1", SPOKE, &root, &[], |_| {});
    (
        cert_config(HUB, authenticator(hub, &root, t0)),
        cert_config(SPOKE, authenticator(spoke, &root, t0)),
    )
}

/// A network started just after `t0`, the instant the authenticators' wall-clock anchors
/// name: its virtual time maps to 2030-01-01 plus the elapsed simulated time.
fn net_at(t0: Instant, seed: u64, hub: Config, spoke: Config) -> Net {
    let net = Net::pair_with(seed, hub, spoke);
    assert!(net.now >= t0);
    net
}

fn ike_up_identity(events: &[Event]) -> Option<AuthenticatedPeer> {
    events.iter().find_map(|e| match e {
        Event::IkeSaUp { identity, .. } => Some(identity.clone()),
        _ => None,
    })
}

fn failed(events: &[Event]) -> Vec<FailReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaFailed { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// The certificate identity an SA reported, checked against the node it names.
fn check_certified(peer: &AuthenticatedPeer, addr: IpAddr, name: &str) -> Arc<PeerIdentity> {
    let cert = peer.certificate.clone().expect("a certificate identity");
    assert_eq!(cert.subject, format!("CN={name}"));
    assert_eq!(cert.ip_sans, vec![addr]);
    assert_eq!(cert.dns_sans, vec![format!("{name}.dmvpn.test")]);
    assert!(peer.owns_address(addr));
    assert!(!peer.owns_address(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 99))));
    cert
}

#[test]
fn p256_and_ed25519_chains_authenticate_and_report_certified_identities() {
    for (seed, alg) in [(1, &PKCS_ECDSA_P256_SHA256), (2, &PKCS_ED25519)] {
        let t0 = Instant::now();
        let (hub, spoke) = cert_pair(alg, t0);
        let certreq = hub.authenticator.certificate_request().unwrap().to_vec();
        assert_eq!(certreq.len(), 20, "one SHA-1 key hash");
        let mut net = net_at(t0, seed, hub, spoke);
        net.nodes[1].engine.initiate(net.now, HUB);
        net.run(5 * SECOND);
        let (h, s) = (net.take_events(0), net.take_events(1));
        let hub_view = ike_up_identity(&h).expect("hub up");
        let spoke_view = ike_up_identity(&s).expect("spoke up");
        // Default identities with certificates: the underlay address, an IP SAN.
        assert_eq!(hub_view, Identity::address(SPOKE));
        assert_eq!(spoke_view, Identity::address(HUB));
        check_certified(&hub_view, SPOKE, "spoke1");
        check_certified(&spoke_view, HUB, "hub");
        let (hc, sc) = (child_ups(&h), child_ups(&s));
        assert_eq!((hc.len(), sc.len()), (1, 1));
        pair_works(hc[0], sc[0]);
        // The hub's IKE_SA_INIT response asked for certificates of our CA (RFC 7296 1.2).
        let init_response = net
            .trace
            .iter()
            .find(|w| w.src.ip() == HUB && w.src.port() == 500)
            .unwrap();
        let p = Packet::new_checked(&init_response.payload[..]).unwrap();
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(repr.exchange_type, ExchangeType::IkeSaInit);
        assert!(repr.payloads.iter().any(|p| matches!(
            p.body,
            PayloadBody::CertReq(c) if c.data == certreq.as_slice()
        )));
        for n in [0, 1] {
            assert_eq!(net.node(n).engine.counters().dropped_total(), 0);
        }
    }
}

#[test]
fn distinguished_name_and_fqdn_identities() {
    let t0 = Instant::now();
    let root = ca(&PKCS_ED25519, "ca");
    let hub_auth = authenticator(
        credentials(&PKCS_ED25519, "hub", HUB, &root, &[], |_| {}),
        &root,
        t0,
    );
    let spoke_auth = authenticator(
        credentials(&PKCS_ED25519, "spoke1", SPOKE, &root, &[], |_| {}),
        &root,
        t0,
    );
    let dn = spoke_auth.subject_identity().unwrap();
    assert_eq!(dn.id_type, IdType::DerAsn1Dn);
    let mut spoke = cert_config(SPOKE, spoke_auth);
    spoke.identity = Some(dn.clone());
    let mut hub = cert_config(HUB, hub_auth);
    hub.identity = Some(Identity::fqdn("HUB.dmvpn.test"));
    let mut net = net_at(t0, 3, hub, spoke);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let hub_view = ike_up_identity(&net.take_events(0)).unwrap();
    let spoke_view = ike_up_identity(&net.take_events(1)).unwrap();
    assert_eq!(hub_view.id, dn);
    assert_eq!(spoke_view.id, Identity::fqdn("HUB.dmvpn.test"));
    check_certified(&hub_view, SPOKE, "spoke1");
    check_certified(&spoke_view, HUB, "hub");
}

#[test]
fn an_identity_our_certificate_does_not_name_is_refused_at_configuration() {
    let t0 = Instant::now();
    let root = ca(&PKCS_ED25519, "ca");
    let other = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 77));
    let creds = credentials(&PKCS_ED25519, "spoke1", other, &root, &[], |_| {});
    let c = cert_config(SPOKE, authenticator(creds, &root, t0));
    assert!(matches!(c.validate(), Err(ConfigError::Identity(_))));
    let mut c = c;
    c.identity = Some(Identity::fqdn("spoke1.dmvpn.test"));
    assert_eq!(c.validate(), Ok(()));
}

/// Signs and verifies through `inner`, but lets a test break the rules: send an identity the
/// certificate does not name, or flip a bit of its AUTH data.
#[derive(Debug)]
struct Rogue {
    inner: SignatureAuthenticator,
    tamper: bool,
}

impl Authenticator for Rogue {
    fn sign(&self, ctx: &AuthContext<'_>) -> Result<(AuthMethod, Vec<u8>), AuthError> {
        let (m, mut data) = self.inner.sign(ctx)?;
        if self.tamper {
            let last = data.len() - 1;
            data[last] ^= 1;
        }
        Ok((m, data))
    }

    fn verify(
        &self,
        ctx: &AuthContext<'_>,
        method: AuthMethod,
        data: &[u8],
    ) -> Result<Option<PeerIdentity>, AuthError> {
        self.inner.verify(ctx, method, data)
    }

    fn certificates(&self) -> &[Vec<u8>] {
        self.inner.certificates()
    }

    fn certificate_request(&self) -> Option<&[u8]> {
        self.inner.certificate_request()
    }
}

/// Runs a spoke-initiated handshake expected to fail on the hub: no SA on either side, the
/// spoke told AUTHENTICATION_FAILED, the hub's drop counted under `reason`.
fn refused_by_hub(seed: u64, t0: Instant, hub: Config, spoke: Config, reason: DropReason) {
    let mut net = net_at(t0, seed, hub, spoke);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(60 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert_eq!(ike_ups(&h) + ike_ups(&s), 0, "{h:?} {s:?}");
    assert!(child_ups(&h).is_empty() && child_ups(&s).is_empty());
    assert_eq!(failed(&h), vec![FailReason::AuthenticationFailed]);
    assert_eq!(
        failed(&s),
        vec![FailReason::PeerRefused(
            dmvpn_wire::ikev2::NotifyType::AuthenticationFailed
        )]
    );
    let counters = net.node(0).engine.counters();
    assert_eq!(counters.dropped(reason), 1, "{counters:?}");
    assert_eq!(counters.dropped_total(), 1, "{counters:?}");
    assert_eq!(counters.ike_sas_established, 0);
    assert!(net.node(0).engine.ike_sas().is_empty());
    assert!(net.node(1).engine.ike_sas().is_empty());
}

#[test]
fn expired_certificate_is_refused() {
    let t0 = Instant::now();
    let root = ca(&PKCS_ECDSA_P256_SHA256, "ca");
    let hub = credentials(&PKCS_ECDSA_P256_SHA256, "hub", HUB, &root, &[], |_| {});
    let spoke = credentials(&PKCS_ECDSA_P256_SHA256, "spoke1", SPOKE, &root, &[], |p| {
        p.not_before = rcgen::date_time_ymd(2028, 1, 1);
        p.not_after = rcgen::date_time_ymd(2029, 12, 31);
    });
    refused_by_hub(
        10,
        t0,
        cert_config(HUB, authenticator(hub, &root, t0)),
        cert_config(SPOKE, authenticator(spoke, &root, t0)),
        DropReason::CertificateRefused,
    );
}

#[test]
fn certificate_of_another_ca_is_refused() {
    let t0 = Instant::now();
    let root = ca(&PKCS_ED25519, "ca");
    let stranger = ca(&PKCS_ED25519, "ca");
    let hub = credentials(&PKCS_ED25519, "hub", HUB, &root, &[], |_| {});
    let spoke = credentials(&PKCS_ED25519, "spoke1", SPOKE, &stranger, &[], |_| {});
    refused_by_hub(
        11,
        t0,
        cert_config(HUB, authenticator(hub, &root, t0)),
        // The spoke trusts the hub's CA: only the hub refuses.
        cert_config(SPOKE, authenticator(spoke, &root, t0)),
        DropReason::CertificateRefused,
    );
}

#[test]
fn an_id_not_in_the_certificate_is_refused() {
    let t0 = Instant::now();
    let root = ca(&PKCS_ECDSA_P256_SHA256, "ca");
    let hub = credentials(&PKCS_ECDSA_P256_SHA256, "hub", HUB, &root, &[], |_| {});
    // The spoke's certificate names another address than the one it identifies with.
    let elsewhere = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 99));
    let spoke = credentials(
        &PKCS_ECDSA_P256_SHA256,
        "spoke1",
        elsewhere,
        &root,
        &[],
        |_| {},
    );
    let rogue = Rogue {
        inner: authenticator(spoke, &root, t0),
        tamper: false,
    };
    refused_by_hub(
        12,
        t0,
        cert_config(HUB, authenticator(hub, &root, t0)),
        cert_config(SPOKE, rogue),
        DropReason::IdentityNotCertified,
    );
}

#[test]
fn a_tampered_initiator_auth_is_refused() {
    let t0 = Instant::now();
    let root = ca(&PKCS_ECDSA_P256_SHA256, "ca");
    let hub = credentials(&PKCS_ECDSA_P256_SHA256, "hub", HUB, &root, &[], |_| {});
    let spoke = credentials(&PKCS_ECDSA_P256_SHA256, "spoke1", SPOKE, &root, &[], |_| {});
    let rogue = Rogue {
        inner: authenticator(spoke, &root, t0),
        tamper: true,
    };
    refused_by_hub(
        13,
        t0,
        cert_config(HUB, authenticator(hub, &root, t0)),
        cert_config(SPOKE, rogue),
        DropReason::AuthenticationFailed,
    );
}

#[test]
fn a_tampered_responder_auth_is_refused_and_the_responder_told() {
    let t0 = Instant::now();
    let root = ca(&PKCS_ED25519, "ca");
    let hub = credentials(&PKCS_ED25519, "hub", HUB, &root, &[], |_| {});
    let spoke = credentials(&PKCS_ED25519, "spoke1", SPOKE, &root, &[], |_| {});
    let rogue = Rogue {
        inner: authenticator(hub, &root, t0),
        tamper: true,
    };
    let mut net = net_at(
        t0,
        14,
        cert_config(HUB, rogue),
        cert_config(SPOKE, authenticator(spoke, &root, t0)),
    );
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(60 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert_eq!(ike_ups(&s), 0);
    assert_eq!(failed(&s), vec![FailReason::AuthenticationFailed]);
    assert_eq!(
        net.node(1)
            .engine
            .counters()
            .dropped(DropReason::AuthenticationFailed),
        1
    );
    // The hub believed the SA up, then the spoke's INFORMATIONAL AUTHENTICATION_FAILED
    // (RFC 7296 section 2.21.2) took it down.
    assert_eq!(ike_ups(&h), 1);
    assert!(
        h.iter().any(|e| matches!(e, Event::IkeSaDown { .. })),
        "{h:?}"
    );
    assert!(net.node(0).engine.ike_sas().is_empty());
    assert!(net.node(1).engine.ike_sas().is_empty());
}

#[test]
fn psk_on_one_side_and_certificates_on_the_other_are_refused() {
    let t0 = Instant::now();
    let root = ca(&PKCS_ED25519, "ca");
    let hub_creds = || credentials(&PKCS_ED25519, "hub", HUB, &root, &[], |_| {});
    let spoke_creds = || credentials(&PKCS_ED25519, "spoke1", SPOKE, &root, &[], |_| {});
    // A PSK initiator against a certificate responder: the wrong AUTH method.
    refused_by_hub(
        20,
        t0,
        cert_config(HUB, authenticator(hub_creds(), &root, t0)),
        config(SPOKE, b"secret"),
        DropReason::AuthenticationFailed,
    );
    // A certificate initiator against a PSK responder.
    refused_by_hub(
        21,
        t0,
        config(HUB, b"secret"),
        cert_config(SPOKE, authenticator(spoke_creds(), &root, t0)),
        DropReason::AuthenticationFailed,
    );
}

/// The IKE message of a datagram on the simulated wire (after the non-ESP marker).
fn ike_message(w: &Wire) -> Option<&[u8]> {
    if w.dst.port() == 4500 {
        match Datagram::parse(&w.payload).ok()? {
            Datagram::Ike(m) => Some(m),
            _ => None,
        }
    } else {
        Some(&w.payload)
    }
}

/// Fragment number and total of an SKF message (RFC 7383 section 2.5), if it is one.
fn skf_numbers(msg: &[u8]) -> Option<(u16, u16)> {
    let p = Packet::new_checked(msg).ok()?;
    let repr = Repr::parse(&p).ok()?;
    repr.payloads.iter().find_map(|p| match p.body {
        PayloadBody::EncryptedFragment(f) => Some((f.fragment_number, f.total_fragments)),
        _ => None,
    })
}

/// Certificates with two intermediates each (four certificates a side in IKE_AUTH), over
/// 576-byte datagrams.
fn long_chain_pair(t0: Instant) -> (Config, Config) {
    let alg = &PKCS_ECDSA_P256_SHA256;
    let root = ca(alg, "kube-dmvpn test root CA");
    let policy = intermediate(alg, "kube-dmvpn policy CA", &root);
    let issuing = intermediate(alg, "kube-dmvpn issuing CA", &policy);
    let hub = credentials(alg, "hub", HUB, &issuing, &[&issuing, &policy], |_| {});
    let spoke = credentials(alg, "spoke1", SPOKE, &issuing, &[&issuing, &policy], |_| {});
    let mut hub = cert_config(HUB, authenticator(hub, &root, t0));
    let mut spoke = cert_config(SPOKE, authenticator(spoke, &root, t0));
    hub.max_datagram = Some(576);
    spoke.max_datagram = Some(576);
    (hub, spoke)
}

#[test]
fn long_chains_cross_as_fragments_through_loss_and_reordering() {
    for seed in 0..8 {
        let t0 = Instant::now();
        let (hub, spoke) = long_chain_pair(t0);
        let mut net = net_at(t0, 100 + seed, hub, spoke);
        net.loss = 100;
        net.dup = 50;
        net.reorder = 300;
        net.nodes[1].engine.initiate(net.now, HUB);
        net.run(120 * SECOND);
        let (h, s) = (net.take_events(0), net.take_events(1));
        let (hc, sc) = (child_ups(&h), child_ups(&s));
        assert_eq!((hc.len(), sc.len()), (1, 1), "seed {seed}: {h:?} {s:?}");
        pair_works(hc[0], sc[0]);
        let hub_view = ike_up_identity(&h).unwrap();
        check_certified(&hub_view, SPOKE, "spoke1");
        check_certified(&ike_up_identity(&s).unwrap(), HUB, "hub");
        for n in [0, 1] {
            let c = net.node(n).engine.counters();
            assert!(c.fragments_sent >= 4, "seed {seed} node {n}: {c:?}");
            assert!(c.messages_reassembled >= 1, "seed {seed} node {n}: {c:?}");
        }
        // Every datagram fits 576 bytes with IPv4 and UDP headers (RFC 7383 section 2.5.1);
        // IKE_AUTH went in fragments both ways.
        let mut fragmented_from = [false, false];
        for w in &net.trace {
            assert!(w.payload.len() + 28 <= 576, "{} bytes", w.payload.len());
            if let Some(msg) = ike_message(w)
                && skf_numbers(msg).is_some()
            {
                fragmented_from[usize::from(w.src.ip() == SPOKE)] = true;
            }
        }
        assert_eq!(fragmented_from, [true, true], "seed {seed}");
    }
}

#[test]
fn an_incomplete_message_expires_and_is_counted() {
    let t0 = Instant::now();
    let (mut hub, spoke) = long_chain_pair(t0);
    hub.fragment_timeout = 3 * SECOND;
    let mut net = net_at(t0, 7, hub, spoke);
    // Every last fragment from the spoke is lost: the hub never completes its IKE_AUTH.
    net.filter = Some(Box::new(|w: &Wire| {
        w.src.ip() == SPOKE
            && ike_message(w)
                .and_then(skf_numbers)
                .is_some_and(|(n, t)| n == t)
    }));
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(60 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert_eq!(ike_ups(&h) + ike_ups(&s), 0);
    assert_eq!(failed(&s), vec![FailReason::Timeout]);
    let c = net.node(0).engine.counters();
    assert!(c.fragments_received > 0, "{c:?}");
    assert_eq!(c.messages_reassembled, 0);
    assert!(c.dropped(DropReason::ReassemblyExpired) >= 2, "{c:?}");
    assert!(net.node(0).engine.ike_sas().is_empty());
}
