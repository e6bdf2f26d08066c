//! Every way a configuration is refused: each message names the field path and the fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dmvpn_crds::{ConfigError, DmvpnNodeSpec};

/// A valid spoke using every section; each case below changes one line of it.
const BASE: &str = "role: spoke
tunnel:
  interface: dmvpn0
  address: 10.1.1.2/24
  mtu: 1400
underlay:
  address: 198.18.0.2
nhrp:
  networkId: 1
  authentication: s3cr3t
  holdTime: 600
  servers:
    - tunnelAddress: 10.1.1.1
      nbmaAddress: 198.18.0.1
ipsec:
  preSharedKeyFile: spoke.psk
  ike: [aes256gcm16-prfsha384-x25519]
  esp: [aes256gcm16]
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

/// `BASE` with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} is not in BASE");
    BASE.replacen(from, to, 1)
}

fn refused(yaml: &str) -> ConfigError {
    match DmvpnNodeSpec::from_yaml_str(yaml) {
        Ok(spec) => panic!("accepted:\n{yaml}\n{spec:#?}"),
        Err(e) => e,
    }
}

/// Asserts that `yaml` is refused with exactly one issue, at `path`, whose message contains
/// every fragment (the problem and the fix).
#[track_caller]
fn one(yaml: &str, path: &str, fragments: &[&str]) {
    let e = refused(yaml);
    let issues = e.issues();
    assert_eq!(issues.len(), 1, "{e}");
    assert_eq!(issues[0].path, path, "{e}");
    for f in fragments {
        assert!(issues[0].message.contains(f), "{f:?} not in: {e}");
    }
    // The rendered error starts with the path, as a user reads it.
    assert!(e.to_string().starts_with(&format!("{path}: ")), "{e}");
}

#[test]
fn base_is_valid() {
    let s = DmvpnNodeSpec::from_yaml_str(BASE).unwrap();
    assert_eq!(s.tunnel.mtu, Some(1400));
}

#[test]
fn unknown_keys_list_the_valid_ones_and_suggest_the_closest() {
    one(
        &edit("role: spoke", "rolle: spoke"),
        "rolle",
        &[
            "unknown field `rolle`",
            "role, tunnel, underlay, nhrp, ipsec, routes, admin, metrics",
            "(did you mean `role`?)",
        ],
    );
    one(
        &edit("holdTime: 600", "holdtime: 600"),
        "nhrp.holdtime",
        &[
            "unknown field `holdtime`",
            "networkId",
            "(did you mean `holdTime`?)",
        ],
    );
    one(
        &edit(
            "nbmaAddress: 198.18.0.1",
            "nbmaAddress: 198.18.0.1\n      nbma: 198.18.0.1",
        ),
        "nhrp.servers[0].nbma",
        &[
            "unknown field `nbma`",
            "tunnelAddress, nbmaAddress, priority",
        ],
    );
    one(
        &edit("esp: [aes256gcm16]", "esp: [aes256gcm16]\n  pfs: x25519"),
        "ipsec.pfs",
        &["unknown field `pfs`", "preSharedKeyFile"],
    );
    // Far from every valid key: listed, nothing suggested.
    let e = refused(&edit("metrics:", "telemetry:")).to_string();
    assert!(
        e.contains("expected one of role,") && !e.contains("did you mean"),
        "{e}"
    );
}

#[test]
fn enums_name_their_values() {
    one(
        &edit("role: spoke", "role: hubb"),
        "role",
        &["unknown variant `hubb`", "hub, spoke", "did you mean `hub`"],
    );
    one(
        &edit("esp: [aes256gcm16]", "esp: [aes256gcm16]\n  mode: tunel"),
        "ipsec.mode",
        &["transport, tunnel", "did you mean `tunnel`"],
    );
    one(
        &edit(
            "esp: [aes256gcm16]",
            "esp: [aes256gcm16]\n  identity: {dns: a.example}",
        ),
        "ipsec.identity",
        &["unknown variant `dns`", "address, fqdn, keyId"],
    );
}

#[test]
fn missing_and_mistyped_fields() {
    one(
        &edit("  address: 10.1.1.2/24\n", ""),
        "tunnel",
        &["missing field `address`"],
    );
    one(&edit("role: spoke\n", ""), ".", &["missing field `role`"]);
    one(
        &edit(
            "tunnel:\n  interface: dmvpn0",
            "tunnel: 5\nx:\n  interface: dmvpn0",
        ),
        "tunnel",
        &["expected mapping"],
    );
    one(
        &edit("holdTime: 600", "holdTime: 600\n  redirect: yes"),
        "nhrp.redirect",
        &["true/false"],
    );
    one(
        &edit("networkId: 1", "networkId: 1\n  networkId: 2"),
        "nhrp.?",
        &["duplicate mapping key: networkId"],
    );
}

#[test]
fn addresses_and_prefixes_say_what_to_write() {
    one(
        &edit("nbmaAddress: 198.18.0.1", "nbmaAddress: hub.example.com"),
        "nhrp.servers[0].nbmaAddress",
        &[
            "\"hub.example.com\"",
            "expected an IPv4 or IPv6 address such as 198.18.0.1",
        ],
    );
    one(
        &edit("tunnelAddress: 10.1.1.1", "tunnelAddress: 10.1.1.1/24"),
        "nhrp.servers[0].tunnelAddress",
        &["expected an IPv4 or IPv6 address such as 198.18.0.1"],
    );
    one(
        &edit("address: 198.18.0.2", "address: 198.18.0.300"),
        "underlay.address",
        &["expected an IPv4 or IPv6 address"],
    );
    one(
        &edit("address: 10.1.1.2/24", "address: 10.1.1.2"),
        "tunnel.address",
        &["expected an address with its prefix length such as 10.1.1.1/24"],
    );
    one(
        &edit(
            "advertise: [192.168.2.0/24]",
            "advertise: [192.168.2.0/24, 192.168.3.0/33]",
        ),
        "routes.advertise[1]",
        &["expected a prefix such as 192.168.1.0/24"],
    );
    one(
        &edit("prefix: 192.168.0.0/16", "prefix: 192.168.0.0 255.255.0.0"),
        "routes.static[0].prefix",
        &["expected a prefix such as 192.168.1.0/24"],
    );
    one(
        &edit("via: 10.1.1.1", "via: tunnel0"),
        "routes.static[0].via",
        &["expected an IPv4 or IPv6 address"],
    );
    one(
        &edit("listen: 127.0.0.1:9469", "listen: 127.0.0.1"),
        "metrics.listen",
        &["expected an address and port such as 127.0.0.1:9469"],
    );
    one(
        &edit(
            "esp: [aes256gcm16]",
            "esp: [aes256gcm16]\n  identity: {address: hub}",
        ),
        "ipsec.identity.address",
        &["expected an IPv4 or IPv6 address"],
    );
}

#[test]
fn integers_give_their_range() {
    for bad in ["0", "-1", "4294967296", "one"] {
        one(
            &edit("networkId: 1", &format!("networkId: {bad}")),
            "nhrp.networkId",
            &["expected a network id from 1 to 4294967295"],
        );
    }
    for bad in ["0", "65536", "-7200"] {
        one(
            &edit("holdTime: 600", &format!("holdTime: {bad}")),
            "nhrp.holdTime",
            &["expected seconds from 1 to 65535"],
        );
    }
    one(
        &edit("holdTime: 600", "holdTime: 600\n  registrationTimeout: 0"),
        "nhrp.registrationTimeout",
        &["expected seconds from 1 to 65535"],
    );
    for bad in ["575", "9001", "\"1400\""] {
        one(
            &edit("mtu: 1400", &format!("mtu: {bad}")),
            "tunnel.mtu",
            &["expected an MTU in bytes from 576 to 9000"],
        );
    }
    for bad in ["-1", "4294967296"] {
        one(
            &edit("mtu: 1400", &format!("mtu: 1400\n  key: {bad}")),
            "tunnel.key",
            &["expected a GRE key from 0 to 4294967295"],
        );
    }
    one(
        &edit(
            "nbmaAddress: 198.18.0.1",
            "nbmaAddress: 198.18.0.1\n      priority: 256",
        ),
        "nhrp.servers[0].priority",
        &["expected a priority from 0 (most preferred) to 255"],
    );
    one(
        &edit("esp: [aes256gcm16]", "esp: [aes256gcm16]\n  dpdInterval: 5"),
        "ipsec.dpdInterval",
        &["expected seconds from 10 to 3600"],
    );
    // The edges are accepted.
    for ok in [
        edit("networkId: 1", "networkId: 4294967295"),
        edit("holdTime: 600", "holdTime: 65535"),
        edit("mtu: 1400", "mtu: 576"),
        edit("mtu: 1400", "mtu: 9000\n  key: 0"),
        edit(
            "esp: [aes256gcm16]",
            "esp: [aes256gcm16]\n  dpdInterval: 3600",
        ),
    ] {
        DmvpnNodeSpec::from_yaml_str(&ok).unwrap();
    }
}

#[test]
fn tunnel_rules() {
    for bad in ["dmvpn-tunnel-zero", "dm/vpn", "dm vpn", "\"\"", "a:b"] {
        one(
            &edit("interface: dmvpn0", &format!("interface: {bad}")),
            "tunnel.interface",
            &[
                "is not a Linux interface name",
                "1 to 15 bytes",
                "such as dmvpn0",
            ],
        );
    }
    one(
        &edit("address: 10.1.1.2/24", "address: 10.1.1.2/32"),
        "tunnel.address",
        &["leaves no room for peers", "10.1.1.2/24"],
    );
    one(
        &edit("address: 10.1.1.2/24", "address: 10.1.1.0/24"),
        "tunnel.address",
        &["network address", "such as 10.1.1.1/24"],
    );
    one(
        &edit("address: 10.1.1.2/24", "address: 10.1.1.255/24"),
        "tunnel.address",
        &["broadcast address", "such as 10.1.1.1/24"],
    );
    let v6 = BASE
        .replace("address: 10.1.1.2/24", "address: 2001:db8:1::2/64")
        .replace("tunnelAddress: 10.1.1.1", "tunnelAddress: 2001:db8:1::1")
        .replace(
            "advertise: [192.168.2.0/24]",
            "advertise: [2001:db8:2::/48]",
        )
        .replace("prefix: 192.168.0.0/16", "prefix: 2001:db8::/32")
        .replace("via: 10.1.1.1", "via: 2001:db8:1::1");
    DmvpnNodeSpec::from_yaml_str(&v6.replace("mtu: 1400", "mtu: 1280")).unwrap();
    one(
        &v6.replace("mtu: 1400", "mtu: 1000"),
        "tunnel.mtu",
        &["below the IPv6 minimum link MTU", "use 1280 to 9000"],
    );
    one(
        &v6.replace("mtu: 1400", "mtu: 1300")
            .replace("2001:db8:1::2/64", "2001:db8:1::2/128"),
        "tunnel.address",
        &["leaves no room for peers", "2001:db8:1::2/64"],
    );
}

#[test]
fn underlay_rules() {
    for bad in ["0.0.0.0", "224.0.0.1", "255.255.255.255"] {
        one(
            &edit("address: 198.18.0.2", &format!("address: \"{bad}\"")),
            "underlay.address",
            &["not a unicast address", "such as 198.18.0.1"],
        );
    }
    // An IPv6 underlay is fine; a multicast one is not.
    let v6 = edit("address: 198.18.0.2", "address: 2001:db8::2")
        .replace("nbmaAddress: 198.18.0.1", "nbmaAddress: 2001:db8::1");
    DmvpnNodeSpec::from_yaml_str(&v6).unwrap();
    one(
        &v6.replace("2001:db8::2", "ff02::1"),
        "underlay.address",
        &["not a unicast address"],
    );
}

#[test]
fn nhrp_rules() {
    one(
        &edit("authentication: s3cr3t", "authentication: s3cr3t-is-long"),
        "nhrp.authentication",
        &["14 bytes", "1 to 8 characters"],
    );
    one(
        &edit("authentication: s3cr3t", "authentication: \"\""),
        "nhrp.authentication",
        &["0 bytes", "1 to 8 characters"],
    );
    one(
        &edit("holdTime: 600", "holdTime: 600\n  registrationTimeout: 601"),
        "nhrp.registrationTimeout",
        &["use at most holdTime, such as 200"],
    );
    let no_servers = edit(
        "  servers:\n    - tunnelAddress: 10.1.1.1\n      nbmaAddress: 198.18.0.1\n",
        "",
    );
    one(
        &no_servers,
        "nhrp.servers",
        &[
            "a spoke needs at least one NHS",
            "tunnelAddress: 10.1.1.1",
            "ip nhrp nhs 10.1.1.1",
        ],
    );
    // A hub needs none, and may have some (hub-to-hub, hierarchical).
    DmvpnNodeSpec::from_yaml_str(&no_servers.replace("role: spoke", "role: hub")).unwrap();
    DmvpnNodeSpec::from_yaml_str(&edit("role: spoke", "role: hub")).unwrap();
    one(
        &edit("tunnelAddress: 10.1.1.1", "tunnelAddress: 10.1.2.1"),
        "nhrp.servers[0].tunnelAddress",
        &["outside the tunnel subnet 10.1.1.0/24", "such as 10.1.1.1"],
    );
    one(
        &edit("tunnelAddress: 10.1.1.1", "tunnelAddress: 2001:db8::1"),
        "nhrp.servers[0].tunnelAddress",
        &["outside the tunnel subnet"],
    );
    one(
        &edit("tunnelAddress: 10.1.1.1", "tunnelAddress: 10.1.1.2"),
        "nhrp.servers[0].tunnelAddress",
        &["this router's own tunnel address", "such as 10.1.1.1"],
    );
    one(
        &edit(
            "nbmaAddress: 198.18.0.1",
            "nbmaAddress: 198.18.0.1\n    - tunnelAddress: 10.1.1.1\n      nbmaAddress: 198.18.0.9",
        ),
        "nhrp.servers[1].tunnelAddress",
        &["listed twice: remove one"],
    );
    one(
        &edit("nbmaAddress: 198.18.0.1", "nbmaAddress: 2001:db8::1"),
        "nhrp.servers[0].nbmaAddress",
        &[
            "not of the family of underlay.address 198.18.0.2",
            "use an IPv4 address",
        ],
    );
    one(
        &edit("nbmaAddress: 198.18.0.1", "nbmaAddress: 198.18.0.2"),
        "nhrp.servers[0].nbmaAddress",
        &["this router's own underlay address"],
    );
    one(
        &edit("nbmaAddress: 198.18.0.1", "nbmaAddress: 239.1.1.1"),
        "nhrp.servers[0].nbmaAddress",
        &["not a unicast address", "such as 198.18.0.1"],
    );
}

#[test]
fn ipsec_authentication_rules() {
    one(
        &edit("  preSharedKeyFile: spoke.psk\n", ""),
        "ipsec",
        &[
            "no authentication",
            "set preSharedKeyFile",
            "certificateFile, privateKeyFile and caFile",
            "remove `ipsec`",
        ],
    );
    one(
        &edit(
            "preSharedKeyFile: spoke.psk",
            "preSharedKeyFile: spoke.psk\n  caFile: ca.pem",
        ),
        "ipsec.preSharedKeyFile",
        &["both a pre-shared key and certificates", "keep one"],
    );
    let e = refused(&edit(
        "preSharedKeyFile: spoke.psk",
        "certificateFile: s.pem",
    ));
    let paths: Vec<&str> = e.issues().iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["ipsec.privateKeyFile", "ipsec.caFile"], "{e}");
    assert!(e.issues()[0].message.contains("add this one"), "{e}");
    DmvpnNodeSpec::from_yaml_str(&edit(
        "preSharedKeyFile: spoke.psk",
        "certificateFile: s.pem\n  privateKeyFile: s.key\n  caFile: ca.pem",
    ))
    .unwrap();
    one(
        &edit("preSharedKeyFile: spoke.psk", "preSharedKeyFile: \"\""),
        "ipsec.preSharedKeyFile",
        &["the file name is empty", "name a file"],
    );
    for bad in ["-bad.example", "a..b", "a_b.example", "\"\""] {
        one(
            &edit(
                "esp: [aes256gcm16]",
                &format!("esp: [aes256gcm16]\n  identity: {{fqdn: {bad}}}"),
            ),
            "ipsec.identity.fqdn",
            &["not a DNS name", "such as hub.example.com"],
        );
    }
    one(
        &edit(
            "esp: [aes256gcm16]",
            "esp: [aes256gcm16]\n  identity: {keyId: \"\"}",
        ),
        "ipsec.identity.keyId",
        &["empty", "such as hub-1"],
    );
}

#[test]
fn ipsec_proposals_refuse_weak_algorithms_naming_the_replacement() {
    // The seed's `crypto isakmp policy 1`: encryption 3des, hash md5, group 2.
    one(
        &edit(
            "ike: [aes256gcm16-prfsha384-x25519]",
            "ike: [3des-md5-modp1024]",
        ),
        "ipsec.ike[0]",
        &["`3des` is refused", "use `aes256gcm16`"],
    );
    one(
        &edit(
            "ike: [aes256gcm16-prfsha384-x25519]",
            "ike: [aes256gcm16-prfsha384-x25519, aes256gcm16-prfsha384-modp1024]",
        ),
        "ipsec.ike[1]",
        &[
            "`modp1024` is refused",
            "RFC 8247 section 2.4",
            "use `x25519`",
        ],
    );
    one(
        &edit(
            "ike: [aes256gcm16-prfsha384-x25519]",
            "ike: [aes256gcm16-md5-x25519]",
        ),
        "ipsec.ike[0]",
        &["`md5` is refused", "prfsha384"],
    );
    one(
        &edit(
            "ike: [aes256gcm16-prfsha384-x25519]",
            "ike: [aes256gcm16-prfsha1-x25519]",
        ),
        "ipsec.ike[0]",
        &["`prfsha1` is refused", "use `prfsha384`"],
    );
    one(
        &edit(
            "ike: [aes256gcm16-prfsha384-x25519]",
            "ike: [aes256-sha256-modp2048]",
        ),
        "ipsec.ike[0]",
        &["`aes256` is not an IKE keyword", "aes256gcm16"],
    );
    one(
        &edit("ike: [aes256gcm16-prfsha384-x25519]", "ike: []"),
        "ipsec.ike",
        &["no IKE proposal", "aes256gcm16-prfsha384-x25519"],
    );
    // The seed's transform set `esp-3des esp-md5-hmac`, in strongSwan words.
    one(
        &edit("esp: [aes256gcm16]", "esp: [3des-md5]"),
        "ipsec.esp[0]",
        &["`3des` is refused", "use `aes256gcm16`"],
    );
    one(
        &edit("esp: [aes256gcm16]", "esp: [aes256gcm16-sha1]"),
        "ipsec.esp[0]",
        &["`sha1` is refused", "aes256gcm16"],
    );
    one(
        &edit("esp: [aes256gcm16]", "esp: [aes256gcm16-modp1024]"),
        "ipsec.esp[0]",
        &["`modp1024` is refused", "x25519"],
    );
    one(
        &edit("esp: [aes256gcm16]", "esp: [aes256cbc]"),
        "ipsec.esp[0]",
        &["not an ESP transform", "use aes256gcm16"],
    );
    one(
        &edit("esp: [aes256gcm16]", "esp: []"),
        "ipsec.esp",
        &["no ESP proposal", "[aes256gcm16]"],
    );
}

#[test]
fn route_rules() {
    one(
        &edit("advertise: [192.168.2.0/24]", "advertise: [192.168.2.1/24]"),
        "routes.advertise[0]",
        &["host bits set", "write 192.168.2.0/24"],
    );
    one(
        &edit(
            "advertise: [192.168.2.0/24]",
            "advertise: [2001:db8:2::/48]",
        ),
        "routes.advertise[0]",
        &["not of the tunnel's address family"],
    );
    one(
        &edit("advertise: [192.168.2.0/24]", "advertise: [10.0.0.0/8]"),
        "routes.advertise[0]",
        &[
            "overlaps the tunnel subnet 10.1.1.0/24",
            "such as 192.168.1.0/24",
        ],
    );
    one(
        &edit("prefix: 192.168.0.0/16", "prefix: 192.168.0.0/8"),
        "routes.static[0].prefix",
        &["host bits set", "write 192.0.0.0/8"],
    );
    one(
        &edit(
            "via: 10.1.1.1",
            "via: 10.1.1.1\n    - prefix: 192.168.0.0/16\n      via: 10.1.1.3",
        ),
        "routes.static[1].prefix",
        &["has a route already: keep one"],
    );
    one(
        &edit("via: 10.1.1.1", "via: 192.168.2.1"),
        "routes.static[0].via",
        &[
            "outside the tunnel subnet 10.1.1.0/24",
            "a peer's tunnel address, such as 10.1.1.1",
        ],
    );
    one(
        &edit("via: 10.1.1.1", "via: 10.1.1.2"),
        "routes.static[0].via",
        &["this router's own tunnel address", "such as 10.1.1.1"],
    );
}

#[test]
fn admin_and_metrics_rules() {
    one(
        &edit("socket: /run/dmvpn/agent.sock", "socket: agent.sock"),
        "admin.socket",
        &["relative", "absolute path such as /run/dmvpn/agent.sock"],
    );
    one(
        &edit(
            "socket: /run/dmvpn/agent.sock",
            &format!("socket: /run/{}", "d".repeat(110)),
        ),
        "admin.socket",
        &["longer than a Unix socket path may be (107)"],
    );
    one(
        &edit("listen: 127.0.0.1:9469", "listen: 0.0.0.0:0"),
        "metrics.listen",
        &["port 0", "such as 0.0.0.0:9469"],
    );
}

#[test]
fn validation_reports_every_problem_at_once() {
    let yaml = BASE
        .replace("holdTime: 600", "holdTime: 600\n  registrationTimeout: 900")
        .replace("via: 10.1.1.1", "via: 10.9.9.9")
        .replace("esp: [aes256gcm16]", "esp: [3des]")
        .replace("socket: /run/dmvpn/agent.sock", "socket: x.sock");
    let e = refused(&yaml);
    let paths: Vec<&str> = e.issues().iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "nhrp.registrationTimeout",
            "ipsec.esp[0]",
            "routes.static[0].via",
            "admin.socket"
        ],
        "{e}"
    );
    // One line per problem.
    assert_eq!(e.to_string().lines().count(), 4, "{e}");
}

#[test]
fn not_yaml_at_all() {
    for junk in [
        "",
        "---\n",
        "[1, 2",
        "role: [",
        "\t- x",
        "a: b: c",
        "*alias",
        "!!binary x",
    ] {
        let e = refused(junk);
        assert_eq!(e.issues().len(), 1, "{junk:?}: {e}");
        assert!(!e.issues()[0].message.is_empty(), "{junk:?}");
    }
}
