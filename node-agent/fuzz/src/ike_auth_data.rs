//! RFC 7427 authentication under hostile bytes: AUTH data, SIGNATURE_HASH_ALGORITHMS data and
//! peer certificates must never panic, and nothing but the signatures openssl made over the
//! fixed message verifies (dmvpn-ike's tests/data/README.md says how they were made).
//!
//! Input: an AUTH method octet, a selector octet, then bytes. Selector bit 0 picks the P-256
//! or the Ed25519 certificate; bit 1 treats the bytes as a peer certificate (DER) to validate
//! against the test CA instead of as AUTH data. The bytes are always also read as
//! SIGNATURE_HASH_ALGORITHMS data.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dmvpn_ike::cert::{PeerIdentity, TrustStore, certificates_from_pem};
use dmvpn_ike::signature::{self, SUPPORTED_HASHES};
use dmvpn_wire::ikev2::AuthMethod;

const CA: &[u8] = include_bytes!("../../ike/tests/data/ca.pem");
const SPOKE1: &[u8] = include_bytes!("../../ike/tests/data/spoke1-p256.pem");
const SPOKE2: &[u8] = include_bytes!("../../ike/tests/data/spoke2-ed25519.pem");
const SIGNED_OCTETS: &[u8] = include_bytes!("../../ike/tests/data/signed-octets.bin");
const AUTH_SPOKE1: &[u8] = include_bytes!("../../ike/tests/data/auth-spoke1-p256.bin");
const AUTH_SPOKE2: &[u8] = include_bytes!("../../ike/tests/data/auth-spoke2-ed25519.bin");

struct Fixture {
    trust: TrustStore,
    /// The P-256 and the Ed25519 spoke, with the only AUTH data that verifies for each.
    spokes: [(PeerIdentity, &'static [u8]); 2],
}

/// 2030-01-01T00:00:00Z, inside the validity of the test certificates.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let trust = TrustStore::from_pem(CA).unwrap();
        let identity = |pem| {
            let der = certificates_from_pem(pem).unwrap();
            trust.verify(&der[0], &[], now()).unwrap()
        };
        let spokes = [
            (identity(SPOKE1), AUTH_SPOKE1),
            (identity(SPOKE2), AUTH_SPOKE2),
        ];
        Fixture { trust, spokes }
    })
}

/// The fuzz check.
pub fn check(data: &[u8]) {
    let [method, selector, rest @ ..] = data else {
        return;
    };
    let fixture = fixture();
    if let Ok(theirs) = signature::decode_hash_algorithms(rest) {
        assert_eq!(theirs.len() * 2, rest.len());
        if let Some(hash) = signature::pick_hash(&SUPPORTED_HASHES, &theirs) {
            assert!(theirs.contains(&hash));
        }
    }
    if selector & 2 != 0 {
        if let Ok(identity) = fixture.trust.verify(rest, &[], now()) {
            // Only certificates the test CA signed validate: the two spokes'.
            assert!(
                fixture.spokes.iter().any(|(spoke, _)| *spoke == identity),
                "a certificate the CA never signed validated"
            );
        }
        return;
    }
    let (identity, genuine) = &fixture.spokes[usize::from(selector & 1)];
    let method = AuthMethod::from(*method);
    if signature::verify(&identity.public_key, method, rest, SIGNED_OCTETS).is_ok() {
        assert_eq!(method, AuthMethod::DigitalSignature);
        assert_eq!(rest, *genuine, "a forged signature verified");
    }
}
