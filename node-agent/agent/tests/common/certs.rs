//! Test PKI made with rcgen at test time: one CA and end-entity certificates for routers,
//! written as PEM files (certificate, PKCS #8 key, CA) for the `ipsec` section.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256, SanType,
};

/// A test CA (ECDSA P-256), valid from 2025 to 2035.
pub struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        Ca(CertifiedIssuer::self_signed(params, key).unwrap())
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.0.pem()
    }

    /// A router certificate for `name` with its underlay address `addr` as an IP
    /// subjectAltName (the default IKE identity) and `<name>.dmvpn.test` as a DNS one:
    /// (certificate PEM, key PEM).
    pub fn router(&self, name: &str, addr: IpAddr) -> (String, String) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = vec![
            SanType::IpAddress(addr),
            SanType::DnsName(format!("{name}.dmvpn.test").try_into().unwrap()),
        ];
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes `name.pem`, `name.key` and `ca.pem` into `dir` for a router at `addr`; returns
    /// the three paths.
    pub fn write_router(&self, dir: &Path, name: &str, addr: IpAddr) -> [PathBuf; 3] {
        let (cert, key) = self.router(name, addr);
        let paths = [
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
            dir.join("ca.pem"),
        ];
        std::fs::write(&paths[0], cert).unwrap();
        std::fs::write(&paths[1], key).unwrap();
        std::fs::write(&paths[2], self.pem()).unwrap();
        paths
    }
}
