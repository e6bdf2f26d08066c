//! Certificate authentication in the agent's configuration (RFC 7427, RFC 4945): the
//! `ipsec` section's certificateFile, privateKeyFile, caFile and identity become the IKE
//! engine's signature authenticator, and every mistake is refused with the field named.
//! The certificates are made with rcgen by each test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::certs::Ca;
use dmvpn_agent::agent::{AgentError, load};
use dmvpn_crds::ConfigError;

const HUB: &str = "198.18.0.1";

fn hub() -> IpAddr {
    HUB.parse().unwrap()
}

fn folder(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dmvpn-certs-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a hub configuration in `dir` whose `ipsec` section holds `ipsec` (YAML lines,
/// file names relative to `dir`), and returns its path.
fn config(dir: &Path, ipsec: &str) -> PathBuf {
    let yaml = format!(
        "role: hub
tunnel: {{interface: dmvpn0, address: 10.1.1.1/24}}
underlay: {{address: {HUB}}}
nhrp: {{networkId: 1}}
ipsec:
{ipsec}"
    );
    let path = dir.join("hub.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

const FILES: &str = "  certificateFile: hub.pem\n  privateKeyFile: hub.key\n  caFile: ca.pem\n";

/// The one issue of a refused configuration: (field path, message).
fn refused(path: &Path) -> (String, String) {
    let e = load(path, false).unwrap_err();
    let AgentError::Config(ConfigError::Invalid { issues, .. }) = e else {
        panic!("{e}");
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    (issues[0].path.clone(), issues[0].message.clone())
}

#[test]
fn certificate_files_make_a_signature_authenticator() {
    let dir = folder("ok");
    let ca = Ca::new("kube-dmvpn test CA");
    ca.write_router(&dir, "hub", hub());
    let (_, _, ipsec) = load(&config(&dir, FILES), false).unwrap();
    let ipsec = ipsec.unwrap();
    // The authenticator sends our certificate in IKE_AUTH (RFC 7296 section 3.6).
    let chain = ipsec.ike.authenticator.certificates();
    assert_eq!(chain.len(), 1);
    assert!(
        ipsec.ike.identity.is_none(),
        "the underlay address by default"
    );
    // The private key stays out of Debug output.
    let key = std::fs::read_to_string(dir.join("hub.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!format!("{ipsec:?}").contains(body));

    // An FQDN identity the certificate names is taken too.
    let with_id = format!("{FILES}  identity: {{fqdn: hub.dmvpn.test}}\n");
    let (_, _, ipsec) = load(&config(&dir, &with_id), false).unwrap();
    assert!(ipsec.unwrap().ike.identity.is_some());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_key_of_another_certificate_is_refused_at_private_key_file() {
    let dir = folder("key");
    let ca = Ca::new("kube-dmvpn test CA");
    ca.write_router(&dir, "hub", hub());
    let (_, other_key) = ca.router("other", hub());
    std::fs::write(dir.join("hub.key"), other_key).unwrap();
    let (field, message) = refused(&config(&dir, FILES));
    assert_eq!(field, "ipsec.privateKeyFile");
    assert!(
        message.contains("does not match the certificate"),
        "{message}"
    );
    std::fs::write(dir.join("hub.key"), "not a key").unwrap();
    let (field, _) = refused(&config(&dir, FILES));
    assert_eq!(field, "ipsec.privateKeyFile");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_certificate_of_another_ca_or_for_another_address_is_refused() {
    let dir = folder("ca");
    let ca = Ca::new("kube-dmvpn test CA");
    ca.write_router(&dir, "hub", hub());
    // caFile names another CA: peers holding it would refuse our certificate.
    std::fs::write(dir.join("ca.pem"), Ca::new("another CA").pem()).unwrap();
    let (field, message) = refused(&config(&dir, FILES));
    assert_eq!(field, "ipsec.certificateFile");
    assert!(message.contains("not issued by a trusted CA"), "{message}");

    // A certificate for another underlay address: the default identity is not in it.
    ca.write_router(&dir, "hub", "198.18.0.9".parse().unwrap());
    let (field, message) = refused(&config(&dir, FILES));
    assert_eq!(field, "ipsec.certificateFile");
    assert!(message.contains("subjectAltName"), "{message}");
    // An explicit identity that the certificate does not name: reported at identity.
    let with_id = format!("{FILES}  identity: {{fqdn: other.dmvpn.test}}\n");
    let (field, _) = refused(&config(&dir, &with_id));
    assert_eq!(field, "ipsec.identity");

    // A CA file without a certificate.
    std::fs::write(dir.join("ca.pem"), "nothing here").unwrap();
    let (field, message) = refused(&config(&dir, FILES));
    assert_eq!(field, "ipsec.caFile");
    assert!(message.contains("ca.pem"), "{message}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn missing_files_and_missing_authentication_name_what_to_fix() {
    let dir = folder("missing");
    let e = load(&config(&dir, FILES), false).unwrap_err();
    assert!(
        matches!(&e, AgentError::Config(ConfigError::Read { path, .. }) if path.ends_with("hub.pem")),
        "{e}"
    );
    // Neither a pre-shared key nor certificates (the crds validation).
    let (field, message) = refused(&config(&dir, "  mode: transport\n"));
    assert_eq!(field, "ipsec");
    assert!(message.contains("preSharedKeyFile"), "{message}");
    // A certificate without its key.
    let (field, _) = refused(&config(
        &dir,
        "  certificateFile: hub.pem\n  caFile: ca.pem\n",
    ));
    assert_eq!(field, "ipsec.privateKeyFile");
    let _ = std::fs::remove_dir_all(dir);
}
