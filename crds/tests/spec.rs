//! The configuration contract: the issue's example, defaults, round trips, the seed's lab
//! files, the JSON schema issue 6 derives the CRD from, and secrets kept out of `Debug`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use dmvpn_crds::{
    AdminSpec, ConfigError, DmvpnNodeSpec, IpsecMode, IpsecSpec, MetricsSpec, NhrpAuthentication,
    NhrpSpec, NhsSpec, PreSharedKey, Role, RoutesSpec, StaticRoute, TunnelSpec, UnderlaySpec,
};

/// The example configuration of issue 5 ("Configuration (a contract ...)"), verbatim.
const ISSUE_YAML: &str = r#"role: hub                     # hub | spoke
tunnel:
  interface: dmvpn0           # interface Tunnel0 (a TUN device)
  address: 10.1.1.1/24        # ip address 10.1.1.1 255.255.255.0
  mtu: 1400                   # ip mtu; optional, default derived from the underlay MTU and overhead
  key: 100                    # tunnel key; optional
underlay:
  address: 198.18.0.1         # tunnel source (NBMA address); the agent binds UDP 500 and 4500 here
nhrp:
  networkId: 1                # ip nhrp network-id
  authentication: "@lpha"     # ip nhrp authentication; optional
  holdTime: 7200              # ip nhrp holdtime
  redirect: true              # hub: ip nhrp redirect
  mapMulticastDynamic: true   # hub: ip nhrp map multicast dynamic
  servers:                    # spoke: ip nhrp nhs 10.1.1.1 + ip nhrp map 10.1.1.1 202.1.1.1
    - tunnelAddress: 10.1.1.1
      nbmaAddress: 198.18.0.1
  shortcut: true              # spoke: ip nhrp shortcut
ipsec:                        # tunnel protection ipsec profile; omit for unprotected GRE (tests only, logged as insecure)
  preSharedKeyFile: hub.psk   # crypto isakmp key (relative to the config file's folder)
  ike: [aes256gcm16-prfsha384-x25519]
  esp: [aes256gcm16]
  mode: transport             # transport | tunnel
routes:
  advertise: [192.168.1.0/24] # this site's prefixes, registered with the NHS
  static:                     # ip route 192.168.2.0 255.255.255.0 10.1.1.2
    - prefix: 192.168.0.0/16
      via: 10.1.1.1
admin:
  socket: /run/dmvpn/agent.sock
metrics:
  listen: 127.0.0.1:9469
"#;

/// A minimal valid spoke: only the required keys.
const MINIMAL_SPOKE: &str = "
role: spoke
tunnel: {interface: dmvpn0, address: 10.1.1.2/24}
underlay: {address: 198.18.0.2}
nhrp:
  networkId: 1
  servers: [{tunnelAddress: 10.1.1.1, nbmaAddress: 198.18.0.1}]
";

fn issue_spec() -> DmvpnNodeSpec {
    DmvpnNodeSpec {
        role: Role::Hub,
        tunnel: TunnelSpec {
            interface: "dmvpn0".into(),
            address: "10.1.1.1/24".parse().unwrap(),
            mtu: Some(1400),
            key: Some(100),
        },
        underlay: UnderlaySpec {
            address: "198.18.0.1".parse().unwrap(),
        },
        nhrp: NhrpSpec {
            network_id: 1,
            authentication: Some(NhrpAuthentication::new("@lpha")),
            authentication_secret_ref: None,
            hold_time: 7200,
            registration_timeout: None,
            redirect: Some(true),
            map_multicast_dynamic: Some(true),
            servers: vec![NhsSpec {
                tunnel_address: "10.1.1.1".parse().unwrap(),
                nbma_address: "198.18.0.1".parse().unwrap(),
                priority: 0,
            }],
            shortcut: Some(true),
        },
        ipsec: Some(IpsecSpec {
            pre_shared_key_file: Some("hub.psk".into()),
            certificate_file: None,
            private_key_file: None,
            ca_file: None,
            pre_shared_key_secret_ref: None,
            certificate_secret_ref: None,
            identity: None,
            ike: vec!["aes256gcm16-prfsha384-x25519".into()],
            esp: vec!["aes256gcm16".into()],
            mode: IpsecMode::Transport,
            force_udp_encap: false,
            dpd_interval: None,
        }),
        routes: RoutesSpec {
            advertise: vec!["192.168.1.0/24".parse().unwrap()],
            static_routes: vec![StaticRoute {
                prefix: "192.168.0.0/16".parse().unwrap(),
                via: "10.1.1.1".parse().unwrap(),
            }],
        },
        admin: AdminSpec {
            socket: "/run/dmvpn/agent.sock".into(),
        },
        metrics: MetricsSpec {
            listen: "127.0.0.1:9469".parse().unwrap(),
        },
    }
}

#[test]
fn issue_example_parses_to_the_expected_spec() {
    let parsed: DmvpnNodeSpec = serde_saphyr::from_str(ISSUE_YAML).unwrap();
    assert_eq!(parsed, issue_spec());
}

#[test]
fn issue_example_as_a_hub_lists_itself_as_its_nhs() {
    // The issue's example merges hub and spoke keys ("hub: ...", "spoke: ..."); as a whole
    // it is a hub naming itself as NHS and as the next hop of a route, which validation
    // refuses, naming each field.
    let e = DmvpnNodeSpec::from_yaml_str(ISSUE_YAML).unwrap_err();
    let paths: Vec<&str> = e.issues().iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "nhrp.servers[0].tunnelAddress",
            "nhrp.servers[0].nbmaAddress",
            "routes.static[0].via"
        ],
        "{e}"
    );
    // With the NHS made another hub (hub-to-hub, as IOS allows), it is valid.
    let two_hubs = ISSUE_YAML
        .replace("- tunnelAddress: 10.1.1.1", "- tunnelAddress: 10.1.1.254")
        .replace("nbmaAddress: 198.18.0.1", "nbmaAddress: 198.18.0.254")
        .replace("via: 10.1.1.1", "via: 10.1.1.254");
    let spec = DmvpnNodeSpec::from_yaml_str(&two_hubs).unwrap();
    assert_eq!(
        spec.nhrp.servers[0].nbma_address.to_string(),
        "198.18.0.254"
    );
    assert!(!spec.is_insecure());
}

#[test]
fn defaults() {
    let s = DmvpnNodeSpec::from_yaml_str(MINIMAL_SPOKE).unwrap();
    assert_eq!(s.nhrp.hold_time, 7200);
    assert_eq!(s.nhrp.registration_interval(), 2400);
    assert_eq!(s.tunnel.mtu, None);
    assert_eq!(s.tunnel.key, None);
    assert_eq!(s.nhrp.servers[0].priority, 0);
    assert_eq!(s.admin.socket, Path::new("/run/dmvpn/agent.sock"));
    assert_eq!(s.metrics.listen.to_string(), "127.0.0.1:9469");
    assert!(s.routes.advertise.is_empty() && s.routes.static_routes.is_empty());
    assert!(s.is_insecure());
    // Phase 3 defaults per role, as in Cisco's configurations.
    assert!(s.nhrp.shortcut_enabled(Role::Spoke));
    assert!(!s.nhrp.redirect_enabled(Role::Spoke));
    assert!(!s.nhrp.map_multicast_dynamic_enabled(Role::Spoke));
    assert!(s.nhrp.redirect_enabled(Role::Hub));
    assert!(!s.nhrp.shortcut_enabled(Role::Hub));
    assert!(s.nhrp.map_multicast_dynamic_enabled(Role::Hub));
    // An explicit value wins over the role's default.
    let mut n = s.nhrp.clone();
    n.shortcut = Some(false);
    n.redirect = Some(true);
    assert!(!n.shortcut_enabled(Role::Spoke) && n.redirect_enabled(Role::Spoke));

    let with_ipsec = format!("{MINIMAL_SPOKE}ipsec: {{preSharedKeyFile: spoke.psk}}\n");
    let s = DmvpnNodeSpec::from_yaml_str(&with_ipsec).unwrap();
    let ipsec = s.ipsec.as_ref().unwrap();
    assert_eq!(ipsec.ike, ["aes256gcm16-prfsha384-x25519"]);
    assert_eq!(ipsec.esp, ["aes256gcm16"]);
    assert_eq!(ipsec.mode, IpsecMode::Transport);
    assert!(!ipsec.force_udp_encap);
    assert_eq!(ipsec.dpd_interval, None);
    assert!(!s.is_insecure());
}

#[test]
fn extensions_parse() {
    // IPv6 underlay and overlay, several prioritized NHSs, certificates, identity, tuning.
    let yaml = "
role: spoke
tunnel: {interface: dmvpn6, address: 2001:db8:1::2/64, mtu: 1280, key: 4294967295}
underlay: {address: 2001:db8:ffff::2}
nhrp:
  networkId: 4294967295
  holdTime: 600
  registrationTimeout: 200
  servers:
    - {tunnelAddress: 2001:db8:1::1, nbmaAddress: 2001:db8:ffff::1, priority: 0}
    - {tunnelAddress: 2001:db8:1::11, nbmaAddress: 2001:db8:ffff::11, priority: 255}
ipsec:
  certificateFile: spoke.crt
  privateKeyFile: spoke.key
  caFile: ca.crt
  identity: {fqdn: spoke2.example.com}
  ike: [chacha20poly1305-prfsha512-ecp384, aes128gcm16-prfsha256-ecp256]
  esp: [aes256gcm16-x25519-esn, chacha20poly1305]
  mode: tunnel
  forceUdpEncap: true
  dpdInterval: 30
routes:
  advertise: [2001:db8:2::/48]
  static: [{prefix: 2001:db8::/32, via: 2001:db8:1::1}]
metrics: {listen: '[::1]:9100'}
";
    let s = DmvpnNodeSpec::from_yaml_str(yaml).unwrap();
    assert_eq!(s.nhrp.servers[1].priority, 255);
    assert_eq!(s.nhrp.registration_interval(), 200);
    let ipsec = s.ipsec.as_ref().unwrap();
    assert_eq!(ipsec.mode, IpsecMode::Tunnel);
    assert_eq!(
        ipsec.identity,
        Some(dmvpn_crds::Identity::Fqdn("spoke2.example.com".into()))
    );
    assert_eq!(s.metrics.listen.port(), 9100);
    let round = serde_saphyr::to_string(&s).unwrap();
    assert_eq!(DmvpnNodeSpec::from_yaml_str(&round).unwrap(), s, "{round}");

    for id in [
        "{address: 198.18.0.2}",
        "{address: 2001:db8::2}",
        "{keyId: spoke-2}",
    ] {
        let y = format!("{MINIMAL_SPOKE}ipsec: {{preSharedKeyFile: a.psk, identity: {id}}}\n");
        DmvpnNodeSpec::from_yaml_str(&y).unwrap();
    }
}

#[test]
fn round_trip() {
    let mut valid = issue_spec();
    valid.nhrp.servers[0].tunnel_address = "10.1.1.254".parse().unwrap();
    valid.nhrp.servers[0].nbma_address = "198.18.0.254".parse().unwrap();
    valid.routes.static_routes[0].via = "10.1.1.254".parse().unwrap();
    valid.validate().unwrap();
    let yaml = serde_saphyr::to_string(&valid).unwrap();
    assert_eq!(
        DmvpnNodeSpec::from_yaml_str(&yaml).unwrap(),
        valid,
        "{yaml}"
    );
    // camelCase keys on the way out, as on the way in.
    for key in [
        "networkId:",
        "holdTime:",
        "preSharedKeyFile:",
        "static:",
        "mapMulticastDynamic:",
    ] {
        assert!(yaml.contains(key), "{key} missing from\n{yaml}");
    }
    let minimal = DmvpnNodeSpec::from_yaml_str(MINIMAL_SPOKE).unwrap();
    let yaml = serde_saphyr::to_string(&minimal).unwrap();
    assert_eq!(
        DmvpnNodeSpec::from_yaml_str(&yaml).unwrap(),
        minimal,
        "{yaml}"
    );
    // Unset role-dependent switches stay unset rather than frozen to one role's default.
    assert!(!yaml.contains("shortcut"), "{yaml}");
}

fn lab(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../e2e/lab")
        .join(name)
}

#[test]
fn seed_lab_sites() {
    let hub = DmvpnNodeSpec::load(lab("hub.yaml")).unwrap();
    let spoke1 = DmvpnNodeSpec::load(lab("spoke1.yaml")).unwrap();
    let spoke2 = DmvpnNodeSpec::load(lab("spoke2.yaml")).unwrap();
    assert_eq!(hub.role, Role::Hub);
    assert_eq!(hub.tunnel.address.to_string(), "10.1.1.1/24");
    assert_eq!(hub.underlay.address.to_string(), "198.18.0.1");
    assert!(hub.nhrp.redirect_enabled(hub.role));
    assert!(hub.nhrp.map_multicast_dynamic_enabled(hub.role));
    assert_eq!(hub.routes.advertise[0].to_string(), "192.168.1.0/24");
    for (spoke, n) in [(&spoke1, 2), (&spoke2, 3)] {
        assert_eq!(spoke.role, Role::Spoke);
        assert_eq!(spoke.tunnel.address.to_string(), format!("10.1.1.{n}/24"));
        assert_eq!(spoke.underlay.address.to_string(), format!("198.18.0.{n}"));
        assert_eq!(
            spoke.routes.advertise[0].to_string(),
            format!("192.168.{n}.0/24")
        );
        // Every spoke registers with the hub at the hub's tunnel and underlay addresses.
        assert_eq!(
            spoke.nhrp.servers[0].tunnel_address,
            hub.tunnel.address.addr()
        );
        assert_eq!(spoke.nhrp.servers[0].nbma_address, hub.underlay.address);
        assert!(spoke.nhrp.shortcut_enabled(spoke.role));
        // Routes to the two other sites' LANs, both via the hub (phase 3).
        assert_eq!(spoke.routes.static_routes.len(), 2);
        assert!(
            spoke
                .routes
                .static_routes
                .iter()
                .all(|r| r.via == hub.tunnel.address.addr())
        );
    }
    let sockets = [&hub, &spoke1, &spoke2].map(|s| s.admin.socket.clone());
    assert!(sockets[0] != sockets[1] && sockets[1] != sockets[2] && sockets[0] != sockets[2]);
    // The seed's NHRP password and pre-shared key, `@lpha`, the file resolved next to the
    // configuration.
    for s in [&hub, &spoke1, &spoke2] {
        assert_eq!(s.nhrp.authentication.as_ref().unwrap().expose(), "@lpha");
        let ipsec = s.ipsec.as_ref().unwrap();
        let file = ipsec.pre_shared_key_file.as_ref().unwrap();
        assert_eq!(file, &lab("dmvpn.psk"));
        assert_eq!(PreSharedKey::read(file).unwrap().expose(), b"@lpha");
    }
}

#[test]
fn load_resolves_relative_files_against_the_config_folder() {
    let dir = scratch_dir("resolve");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let yaml = format!(
        "{MINIMAL_SPOKE}ipsec: {{certificateFile: keys/s.crt, privateKeyFile: /etc/s.key, caFile: ../ca.crt}}\n"
    );
    std::fs::write(dir.join("spoke.yaml"), yaml).unwrap();
    let s = DmvpnNodeSpec::load(dir.join("spoke.yaml")).unwrap();
    let ipsec = s.ipsec.unwrap();
    assert_eq!(ipsec.certificate_file.unwrap(), dir.join("keys/s.crt"));
    assert_eq!(ipsec.private_key_file.unwrap(), Path::new("/etc/s.key"));
    assert_eq!(ipsec.ca_file.unwrap(), dir.join("../ca.crt"));
    // from_yaml_str has no folder: names stay as written.
    let s = DmvpnNodeSpec::from_yaml_str(&format!(
        "{MINIMAL_SPOKE}ipsec: {{preSharedKeyFile: s.psk}}\n"
    ))
    .unwrap();
    assert_eq!(
        s.ipsec.unwrap().pre_shared_key_file.unwrap(),
        Path::new("s.psk")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dmvpn-crds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let spec = issue_spec();
    let shown = format!("{spec:?}");
    assert!(
        !shown.contains("@lpha") && shown.contains("<redacted>"),
        "{shown}"
    );

    let dir = scratch_dir("psk");
    let file = dir.join("k.psk");
    std::fs::write(&file, "correct horse battery staple\r\n").unwrap();
    let key = PreSharedKey::read(&file).unwrap();
    assert_eq!(key.expose(), b"correct horse battery staple");
    let shown = format!("{key:?}");
    assert_eq!(shown, "PreSharedKey(<redacted>)");
    // Only one line break is taken off: the rest is the key.
    std::fs::write(&file, "k\n\n").unwrap();
    assert_eq!(PreSharedKey::read(&file).unwrap().expose(), b"k\n");

    // A password that is too long: the message gives its length, not its value.
    let y = MINIMAL_SPOKE.replace(
        "networkId: 1",
        "networkId: 1\n  authentication: sw0rdfish99",
    );
    let e = DmvpnNodeSpec::from_yaml_str(&y).unwrap_err().to_string();
    assert!(!e.contains("sw0rdfish99") && e.contains("11 bytes"), "{e}");
    // A password of the wrong type: no excerpt of the source in the message.
    let y = MINIMAL_SPOKE.replace(
        "networkId: 1",
        "networkId: 1\n  authentication: [sw0rdfish]",
    );
    let e = DmvpnNodeSpec::from_yaml_str(&y).unwrap_err().to_string();
    assert!(
        !e.contains("sw0rdfish") && e.starts_with("nhrp.authentication:"),
        "{e}"
    );
    // A number is a password too (`authentication: 1234`), read as written.
    let y = MINIMAL_SPOKE.replace("networkId: 1", "networkId: 1\n  authentication: 1234");
    let s = DmvpnNodeSpec::from_yaml_str(&y).unwrap();
    assert_eq!(s.nhrp.authentication.unwrap().expose(), "1234");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pre_shared_key_file_errors_name_the_file_not_the_key() {
    let dir = scratch_dir("psk-errors");
    let missing = dir.join("missing.psk");
    let e = PreSharedKey::read(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("missing.psk"), "{e}");

    let empty = dir.join("empty.psk");
    std::fs::write(&empty, "\n").unwrap();
    let e = PreSharedKey::read(&empty).unwrap_err();
    assert_eq!(e.issues()[0].path, "ipsec.preSharedKeyFile");
    assert!(
        e.to_string()
            .contains("empty.psk is empty: write the key on one line"),
        "{e}"
    );

    let big = dir.join("big.psk");
    std::fs::write(&big, "s".repeat(5000)).unwrap();
    let e = PreSharedKey::read(&big).unwrap_err().to_string();
    assert!(
        e.contains("longer than 4096 bytes") && !e.contains("sss"),
        "{e}"
    );
    std::fs::write(&big, "s".repeat(4096)).unwrap();
    assert_eq!(PreSharedKey::read(&big).unwrap().expose().len(), 4096);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_errors_name_the_file() {
    let dir = scratch_dir("load");
    let e = DmvpnNodeSpec::load(dir.join("nope.yaml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }) && e.issues().is_empty());
    assert!(e.to_string().starts_with("cannot read "), "{e}");
    let file = dir.join("bad.yaml");
    std::fs::write(&file, MINIMAL_SPOKE.replace("networkId: 1", "networkId: 0")).unwrap();
    let e = DmvpnNodeSpec::load(&file).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: nhrp.networkId: ", file.display())),
        "{e}"
    );
    std::fs::write(&file, "x".repeat(2 << 20)).unwrap();
    let e = DmvpnNodeSpec::load(&file).unwrap_err().to_string();
    assert!(e.contains("larger than 1 MiB"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn json_schema_for_the_crd() {
    // Issue 6 derives the DmvpnNode CRD's OpenAPI schema from these types (schemars 1, as
    // kube-derive 5 uses): keys, ranges, enums and closed objects are in it.
    let schema = schemars::schema_for!(DmvpnNodeSpec);
    let v = schema.as_value();
    let props = &v["properties"];
    assert_eq!(v["additionalProperties"], false);
    for key in [
        "role", "tunnel", "underlay", "nhrp", "ipsec", "routes", "admin", "metrics",
    ] {
        assert!(props.get(key).is_some(), "{key} missing from {v:#}");
    }
    let required: Vec<&str> = v["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(required, ["role", "tunnel", "underlay", "nhrp"]);
    let defs = &v["$defs"];
    let nhrp = &defs["NhrpSpec"]["properties"];
    assert_eq!(nhrp["holdTime"]["maximum"], 65535);
    assert_eq!(nhrp["holdTime"]["default"], 7200);
    assert_eq!(nhrp["networkId"]["minimum"], 1);
    assert_eq!(defs["TunnelSpec"]["properties"]["mtu"]["maximum"], 9000);
    assert!(defs["RoutesSpec"]["properties"].get("static").is_some());
    let role = defs["Role"].to_string();
    assert!(
        role.contains("\"hub\"") && role.contains("\"spoke\""),
        "{role}"
    );
}

const KUBE_HUB: &str = "
role: hub
tunnel: {interface: dmvpn0, address: 10.1.1.1/24}
underlay: {address: 198.18.0.1}
nhrp:
  networkId: 1
  authenticationSecretRef: {name: dmvpn-nhrp-auth, key: password}
ipsec:
  preSharedKeySecretRef: {name: dmvpn-psk, key: psk}
";

#[test]
fn secret_references_are_for_dmvpn_nodes_only() {
    // A DmvpnNode's spec (rendered by the operator) may name Secrets ...
    let spec: DmvpnNodeSpec = serde_saphyr::from_str(KUBE_HUB).unwrap();
    spec.validate().unwrap();
    let r = spec
        .ipsec
        .as_ref()
        .unwrap()
        .pre_shared_key_secret_ref
        .as_ref()
        .unwrap();
    assert_eq!((r.name.as_str(), r.key.as_str()), ("dmvpn-psk", "psk"));
    // ... a configuration file may not, and is told what to write instead.
    let e = DmvpnNodeSpec::from_yaml_str(KUBE_HUB)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ipsec.preSharedKeySecretRef: Secret references work only under Kubernetes"),
        "{e}"
    );
    assert!(e.contains("use ipsec.preSharedKeyFile"), "{e}");
    assert!(
        e.contains("nhrp.authenticationSecretRef: Secret references"),
        "{e}"
    );
}

#[test]
fn secret_references_are_checked() {
    let both = KUBE_HUB.replace(
        "ipsec:\n",
        "ipsec:\n  certificateSecretRef: {name: hub-tls}\n",
    );
    let spec: DmvpnNodeSpec = serde_saphyr::from_str(&both).unwrap();
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("more than one authentication"), "{e}");
    let bad = KUBE_HUB
        .replace("name: dmvpn-psk", "name: Dmvpn_PSK")
        .replace("key: password", "key: pass/word");
    let spec: DmvpnNodeSpec = serde_saphyr::from_str(&bad).unwrap();
    let e = spec.validate().unwrap_err().to_string();
    assert!(
        e.contains("ipsec.preSharedKeySecretRef.name: `Dmvpn_PSK` is not a Secret name"),
        "{e}"
    );
    assert!(
        e.contains("nhrp.authenticationSecretRef.key: `pass/word` is not a Secret key"),
        "{e}"
    );
    let with_password = KUBE_HUB.replace("networkId: 1\n", "networkId: 1\n  authentication: x\n");
    let spec: DmvpnNodeSpec = serde_saphyr::from_str(&with_password).unwrap();
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("both a password and a Secret"), "{e}");
}
