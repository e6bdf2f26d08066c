//! Certificate authentication (RFC 7427, RFC 4945): chains made by rcgen for each case, and a
//! fixed chain and signatures made by openssl (tests/data/README.md), whose verification by
//! our code, and ours by openssl, are checks independent of this crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dmvpn_ike::cert::{CertError, Credentials, TrustStore};
use dmvpn_ike::signature::{self, KeyType, SignatureAlgorithm, SignatureError};
use dmvpn_wire::ikev2::{AuthMethod, IdType, Identification};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, SanType,
};
use ring::rand::SystemRandom;

/// 2030-01-01T00:00:00Z, inside the validity of every certificate here.
fn jan_2030() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn ca(alg: &'static rcgen::SignatureAlgorithm, name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    CertifiedIssuer::self_signed(params, KeyPair::generate_for(alg).unwrap()).unwrap()
}

struct EndEntity {
    der: Vec<u8>,
    pem: String,
    key_pem: String,
}

fn end_entity(
    alg: &'static rcgen::SignatureAlgorithm,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    tweak: impl FnOnce(&mut CertificateParams),
) -> EndEntity {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "spoke1");
    params.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))),
        SanType::DnsName("Spoke1.dmvpn.test".try_into().unwrap()),
        SanType::Rfc822Name("ops@dmvpn.test".try_into().unwrap()),
    ];
    params.not_before = rcgen::date_time_ymd(2029, 1, 1);
    params.not_after = rcgen::date_time_ymd(2031, 1, 1);
    tweak(&mut params);
    let cert = params.signed_by(&key, issuer).unwrap();
    EndEntity {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn store(ca: &CertifiedIssuer<'static, KeyPair>) -> TrustStore {
    TrustStore::from_pem(ca.pem().as_bytes()).unwrap()
}

fn id(id_type: IdType, data: &[u8]) -> Identification<'_> {
    Identification { id_type, data }
}

#[test]
fn valid_chains_sign_and_verify() {
    let rng = SystemRandom::new();
    for (alg, key_type) in [
        (&PKCS_ECDSA_P256_SHA256, KeyType::EcdsaP256),
        (&PKCS_ED25519, KeyType::Ed25519),
    ] {
        let ca = ca(alg, "ca");
        let ee = end_entity(alg, &ca, |_| {});
        let identity = store(&ca).verify(&ee.der, &[], jan_2030()).unwrap();
        assert_eq!(identity.subject, "CN=spoke1");
        assert_eq!(identity.ip_sans, [IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))]);
        assert_eq!(identity.dns_sans, ["Spoke1.dmvpn.test"]);
        assert_eq!(identity.email_sans, ["ops@dmvpn.test"]);
        assert_eq!(identity.public_key.key_type(), key_type);
        assert!(identity.owns_address(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))));
        assert!(!identity.owns_address(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))));

        // The peer signs with the key of that certificate; we verify with the certificate.
        let creds = Credentials::from_pem(ee.pem.as_bytes(), ee.key_pem.as_bytes(), &rng).unwrap();
        assert_eq!(creds.chain(), std::slice::from_ref(&ee.der));
        let octets = b"RealMessage1 | Nr | prf(SK_pi, IDi')";
        let auth = signature::sign(creds.key(), octets, &rng).unwrap();
        assert_eq!(
            signature::verify(
                &identity.public_key,
                AuthMethod::DigitalSignature,
                &auth,
                octets
            ),
            Ok(creds.key().algorithm())
        );
        // Tampered signature.
        let mut bad = auth.clone();
        let at = bad.len() / 2 + 10;
        bad[at] ^= 0x40;
        assert_eq!(
            signature::verify(
                &identity.public_key,
                AuthMethod::DigitalSignature,
                &bad,
                octets
            ),
            Err(SignatureError::BadSignature)
        );
        let debug = format!("{creds:?}");
        assert!(
            debug.contains("<redacted>") && !debug.contains("PRIVATE"),
            "{debug}"
        );
    }
}

#[test]
fn id_must_be_bound_to_the_certificate() {
    let ca = ca(&PKCS_ECDSA_P256_SHA256, "ca");
    let ee = end_entity(&PKCS_ECDSA_P256_SHA256, &ca, |_| {});
    let identity = store(&ca).verify(&ee.der, &[], jan_2030()).unwrap();
    let ok: [Identification<'_>; 5] = [
        id(IdType::Ipv4Addr, &[198, 18, 0, 1]),
        id(IdType::Fqdn, b"spoke1.DMVPN.test"),
        id(IdType::Rfc822Addr, b"ops@dmvpn.test"),
        id(IdType::DerAsn1Dn, &identity.subject_der),
        id(IdType::Fqdn, b"Spoke1.dmvpn.test"),
    ];
    for good in ok {
        assert_eq!(identity.check_id(&good), Ok(()), "{good:?}");
    }
    let mut other_dn = identity.subject_der.clone();
    *other_dn.last_mut().unwrap() ^= 1;
    let mismatched: [Identification<'_>; 6] = [
        id(IdType::Ipv4Addr, &[198, 18, 0, 2]),
        id(IdType::Ipv4Addr, &[198, 18, 0]),
        id(IdType::Ipv6Addr, &[0; 16]),
        id(IdType::Fqdn, b"spoke2.dmvpn.test"),
        id(IdType::Rfc822Addr, b"root@dmvpn.test"),
        id(IdType::DerAsn1Dn, &other_dn),
    ];
    for bad in mismatched {
        assert_eq!(
            identity.check_id(&bad),
            Err(CertError::IdNotInCertificate(bad.id_type)),
            "{bad:?}"
        );
    }
    assert_eq!(
        identity.check_id(&id(IdType::KeyId, b"spoke1")),
        Err(CertError::IdTypeNotBindable(IdType::KeyId))
    );
}

#[test]
fn expired_not_yet_valid_and_wrong_ca_are_refused() {
    let ca1 = ca(&PKCS_ECDSA_P256_SHA256, "ca1");
    let ca2 = ca(&PKCS_ECDSA_P256_SHA256, "ca2");
    let ee = end_entity(&PKCS_ECDSA_P256_SHA256, &ca1, |_| {});
    let trust = store(&ca1);
    let year = Duration::from_secs(365 * 86_400);
    assert_eq!(
        trust
            .verify(&ee.der, &[], jan_2030() + 2 * year)
            .unwrap_err(),
        CertError::Expired
    );
    assert_eq!(
        trust
            .verify(&ee.der, &[], jan_2030() - 2 * year)
            .unwrap_err(),
        CertError::NotValidYet
    );
    assert_eq!(
        trust
            .verify(&ee.der, &[], UNIX_EPOCH - Duration::from_secs(1))
            .unwrap_err(),
        CertError::TimeBeforeEpoch
    );
    assert_eq!(
        store(&ca2).verify(&ee.der, &[], jan_2030()).unwrap_err(),
        CertError::UnknownIssuer
    );
    // A CA presented as the end entity.
    assert!(trust.verify(ca1.der(), &[], jan_2030()).is_err());
}

#[test]
fn intermediate_chain() {
    let root = ca(&PKCS_ED25519, "root");
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "sub");
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let sub = CertifiedIssuer::signed_by(params, key, &root).unwrap();
    let ee = end_entity(&PKCS_ECDSA_P256_SHA256, &sub, |_| {});
    let trust = store(&root);
    assert!(trust.verify(&ee.der, &[sub.der()], jan_2030()).is_ok());
    assert_eq!(
        trust.verify(&ee.der, &[], jan_2030()).unwrap_err(),
        CertError::UnknownIssuer
    );
}

#[test]
fn extended_key_usage_policy() {
    let ca = ca(&PKCS_ECDSA_P256_SHA256, "ca");
    let trust = store(&ca);
    let ipsec_ike = ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 17]);
    for allowed in [
        vec![ipsec_ike],
        vec![ExtendedKeyUsagePurpose::Any],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
        vec![
            ExtendedKeyUsagePurpose::CodeSigning,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    ] {
        let ee = end_entity(&PKCS_ECDSA_P256_SHA256, &ca, |p| {
            p.extended_key_usages = allowed.clone()
        });
        assert!(
            trust.verify(&ee.der, &[], jan_2030()).is_ok(),
            "{allowed:?}"
        );
    }
    let ee = end_entity(&PKCS_ECDSA_P256_SHA256, &ca, |p| {
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::CodeSigning,
            ExtendedKeyUsagePurpose::EmailProtection,
        ]
    });
    assert_eq!(
        trust.verify(&ee.der, &[], jan_2030()).unwrap_err(),
        CertError::KeyUsage
    );
}

#[test]
fn tampered_and_garbage_certificates() {
    let ca = ca(&PKCS_ECDSA_P256_SHA256, "ca");
    let trust = store(&ca);
    let ee = end_entity(&PKCS_ECDSA_P256_SHA256, &ca, |_| {});
    // A flipped bit in the subject: the CA's signature no longer covers it.
    let cn = ee.der.windows(6).position(|w| w == b"spoke1").unwrap();
    let mut tampered = ee.der.clone();
    tampered[cn] ^= 0x20;
    assert_eq!(
        trust.verify(&tampered, &[], jan_2030()).unwrap_err(),
        CertError::BadSignature
    );
    for len in [0, 1, 10, ee.der.len() / 2, ee.der.len() - 1] {
        assert!(trust.verify(&ee.der[..len], &[], jan_2030()).is_err());
    }
    assert_eq!(
        trust.verify(&[0xff; 64], &[], jan_2030()).unwrap_err(),
        CertError::Malformed
    );
    assert_eq!(
        TrustStore::from_pem(b"not pem").unwrap_err(),
        CertError::Pem
    );
    assert_eq!(
        TrustStore::from_der([&[0x30, 0x03, 0x02, 0x01, 0x00][..]]).unwrap_err(),
        CertError::Malformed
    );
}

#[test]
fn credentials_refuse_a_key_of_another_certificate() {
    let rng = SystemRandom::new();
    let ca = ca(&PKCS_ECDSA_P256_SHA256, "ca");
    let a = end_entity(&PKCS_ECDSA_P256_SHA256, &ca, |_| {});
    let b = end_entity(&PKCS_ECDSA_P256_SHA256, &ca, |_| {});
    assert_eq!(
        Credentials::from_pem(a.pem.as_bytes(), b.key_pem.as_bytes(), &rng).unwrap_err(),
        CertError::KeyNotCertified
    );
}

#[test]
fn certreq_is_the_sha1_of_each_ca_key_info() {
    let ca1 = ca(&PKCS_ECDSA_P256_SHA256, "ca1");
    let ca2 = ca(&PKCS_ED25519, "ca2");
    let pem = format!("{}{}", ca1.pem(), ca2.pem());
    let trust = TrustStore::from_pem(pem.as_bytes()).unwrap();
    let mut expected = Vec::new();
    for issuer in [&ca1, &ca2] {
        let spki = rcgen::PublicKeyData::subject_public_key_info(issuer.key());
        expected.extend_from_slice(
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &spki).as_ref(),
        );
    }
    assert_eq!(trust.certreq_data(), expected);
}

// The fixed openssl chain (tests/data/README.md).

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

#[test]
fn openssl_chain_and_signatures_verify() {
    let trust = TrustStore::from_pem(&read("ca.pem")).unwrap();
    let octets = read("signed-octets.bin");
    for (cert, auth, ip, alg) in [
        (
            "spoke1-p256.pem",
            "auth-spoke1-p256.bin",
            [198, 18, 0, 1],
            SignatureAlgorithm::EcdsaWithSha256,
        ),
        (
            "spoke2-ed25519.pem",
            "auth-spoke2-ed25519.bin",
            [198, 18, 0, 2],
            SignatureAlgorithm::Ed25519,
        ),
    ] {
        let der = dmvpn_ike::cert::certificates_from_pem(&read(cert)).unwrap();
        let identity = trust.verify(&der[0], &[], jan_2030()).unwrap();
        assert_eq!(identity.check_id(&id(IdType::Ipv4Addr, &ip)), Ok(()));
        let auth = read(auth);
        assert_eq!(
            signature::verify(
                &identity.public_key,
                AuthMethod::DigitalSignature,
                &auth,
                &octets
            ),
            Ok(alg)
        );
        assert_eq!(
            signature::verify(
                &identity.public_key,
                AuthMethod::DigitalSignature,
                &auth,
                b"other octets"
            ),
            Err(SignatureError::BadSignature)
        );
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command line (Debian package openssl)")
}

#[test]
fn openssl_verifies_our_signatures() {
    let rng = SystemRandom::new();
    let dir = std::env::temp_dir().join(format!("dmvpn-ike-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let octets = read("signed-octets.bin");
    let msg = dir.join("msg");
    std::fs::write(&msg, &octets).unwrap();
    for name in ["spoke1-p256", "spoke2-ed25519"] {
        let cert = data(&format!("{name}.pem"));
        let creds = Credentials::from_pem(
            &std::fs::read(&cert).unwrap(),
            &read(&format!("{name}.key")),
            &rng,
        )
        .unwrap();
        let auth = signature::sign(creds.key(), &octets, &rng).unwrap();
        // Strip the length octet and AlgorithmIdentifier: openssl takes the bare signature.
        let sig = &auth[1 + usize::from(auth[0])..];
        let sig_path = dir.join(format!("{name}.sig"));
        std::fs::write(&sig_path, sig).unwrap();
        let pubkey = openssl(&["x509", "-in", cert.to_str().unwrap(), "-pubkey", "-noout"]);
        assert!(pubkey.status.success());
        let pub_path = dir.join(format!("{name}.pub"));
        std::fs::write(&pub_path, &pubkey.stdout).unwrap();
        let (p, s, m) = (
            pub_path.to_str().unwrap(),
            sig_path.to_str().unwrap(),
            msg.to_str().unwrap(),
        );
        let out = match creds.key().algorithm() {
            SignatureAlgorithm::EcdsaWithSha256 => {
                openssl(&["dgst", "-sha256", "-verify", p, "-signature", s, m])
            }
            SignatureAlgorithm::Ed25519 => openssl(&[
                "pkeyutl", "-verify", "-pubin", "-inkey", p, "-rawin", "-in", m, "-sigfile", s,
            ]),
            other => panic!("unexpected {other:?}"),
        };
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // And a wrong message fails there too, so the check can fail.
        std::fs::write(&msg, b"other").unwrap();
        let out = match creds.key().algorithm() {
            SignatureAlgorithm::EcdsaWithSha256 => {
                openssl(&["dgst", "-sha256", "-verify", p, "-signature", s, m])
            }
            _ => openssl(&[
                "pkeyutl", "-verify", "-pubin", "-inkey", p, "-rawin", "-in", m, "-sigfile", s,
            ]),
        };
        assert!(!out.status.success(), "{name}: openssl accepted anything");
        std::fs::write(&msg, &octets).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
