//! The loader never panics, whatever it is given, and whatever it accepts survives a round
//! trip through YAML.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dmvpn_crds::DmvpnNodeSpec;
use proptest::prelude::*;

const VALID: &str = "role: spoke
tunnel:
  interface: dmvpn0
  address: 10.1.1.2/24
  mtu: 1400
  key: 7
underlay:
  address: 198.18.0.2
nhrp:
  networkId: 1
  authentication: s3cr3t
  holdTime: 600
  servers:
    - tunnelAddress: 10.1.1.1
      nbmaAddress: 198.18.0.1
      priority: 3
ipsec:
  preSharedKeyFile: spoke.psk
  identity: {fqdn: spoke.example.com}
  ike: [aes256gcm16-prfsha384-x25519]
  esp: [aes256gcm16]
  mode: tunnel
  dpdInterval: 30
routes:
  advertise: [192.168.2.0/24]
  static:
    - prefix: 192.168.0.0/16
      via: 10.1.1.1
admin:
  socket: /run/dmvpn/agent.sock
metrics:
  listen: 127.0.0.1:9469
";

/// Text made of YAML's structure characters, keys and values of the spec.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just(": ".to_owned()),
        Just("\n".to_owned()),
        Just("\n  ".to_owned()),
        Just("- ".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(", ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: ".to_owned()),
        Just("!!str ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("|\n".to_owned()),
        Just("# ".to_owned()),
        Just("---\n".to_owned()),
        Just("~".to_owned()),
        prop::sample::select(vec![
            "role",
            "hub",
            "spoke",
            "tunnel",
            "interface",
            "address",
            "mtu",
            "key",
            "underlay",
            "nhrp",
            "networkId",
            "holdTime",
            "servers",
            "tunnelAddress",
            "nbmaAddress",
            "ipsec",
            "ike",
            "esp",
            "mode",
            "routes",
            "advertise",
            "static",
            "prefix",
            "via",
            "admin",
            "metrics",
            "listen",
            "10.1.1.1/24",
            "198.18.0.1",
            "2001:db8::1",
            "-1",
            "65536",
            "true",
            "null",
            "1e9",
            "0x10",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

/// `VALID` with one line replaced, deleted or duplicated, or one byte range spliced.
fn mutated() -> impl Strategy<Value = String> {
    let lines: Vec<&'static str> = VALID.lines().collect();
    let n = lines.len();
    (0..n, 0..4u8, yamlish()).prop_map(move |(i, op, text)| {
        let mut l: Vec<String> = lines.iter().map(|s| (*s).to_owned()).collect();
        match op {
            0 => l[i] = text,
            1 => {
                l.remove(i);
            }
            2 => l.insert(i, l[i].clone()),
            _ => {
                let line = &l[i];
                let cut = line.len() / 2;
                l[i] = format!("{}{text}", &line[..cut]);
            }
        }
        l.join("\n")
    })
}

fn check(yaml: &str) {
    if let Ok(spec) = DmvpnNodeSpec::from_yaml_str(yaml) {
        let again = match serde_saphyr::to_string(&spec) {
            Ok(again) => again,
            Err(e) => panic!("an accepted spec does not serialize: {e}\n{yaml}"),
        };
        match DmvpnNodeSpec::from_yaml_str(&again) {
            Ok(back) => assert_eq!(back, spec, "{yaml}\n---\n{again}"),
            Err(e) => panic!("{e}\n{yaml}\n---\n{again}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text(s in ".{0,300}") {
        check(&s);
    }

    #[test]
    fn yamlish_text(s in yamlish()) {
        check(&s);
    }

    #[test]
    fn mutated_valid_config(s in mutated()) {
        check(&s);
    }
}

#[test]
fn valid_base_and_deep_nesting() {
    check(VALID);
    DmvpnNodeSpec::from_yaml_str(VALID).unwrap();
    // Deep nesting and alias bombs end in an error, not a stack overflow or a memory blow-up.
    for deep in [
        "[".repeat(100_000),
        "{a: ".repeat(100_000),
        "- ".repeat(100_000),
    ] {
        assert!(DmvpnNodeSpec::from_yaml_str(&deep).is_err());
    }
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    bomb.push_str("role: *a11\n");
    assert!(DmvpnNodeSpec::from_yaml_str(&bomb).is_err());
}
