//! `show ip nhrp [detail]` (the NHRP cache, RFC 2332 section 5.1 / Cisco IOS) and `show ip
//! nhrp traffic` (messages by type, RFC 2332 section 5.2, and drops).

use core::net::IpAddr;

use dmvpn_nhrp::show::NhrpEntry;
use dmvpn_nhrp::{DropReason, EntryType};
use dmvpn_wire::nhrp::Operation;
use serde::Serialize;

use super::format::{entry_type, uptime};
use super::out;
use crate::snapshot::RouterSnapshot;

/// `show ip nhrp -o json`: `{"entries":[...]}` (a contract: the field names never change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NhrpEntriesJson {
    /// The cache entries, by prefix, then the resolutions in flight.
    pub entries: Vec<NhrpEntryJson>,
}

/// One entry of `show ip nhrp -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NhrpEntryJson {
    /// The prefix, `10.1.1.2/32`.
    pub prefix: String,
    /// The tunnel address of the router that owns the prefix ("via").
    pub tunnel_address: IpAddr,
    /// The NBMA address packets go to (post-NAT).
    pub nbma_address: IpAddr,
    /// `static`, `dynamic` (registered), `shortcut`, `local` or `incomplete`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Seconds before it expires; `null` for entries that never do.
    pub expires_in_seconds: Option<u64>,
    /// The NBMA address its owner claimed (differs behind NAT).
    pub claimed_nbma_address: IpAddr,
    /// Seconds since it was created.
    pub age_seconds: u64,
}

/// The entries sorted by prefix, incomplete ones last (IOS lists the cache by address).
fn sorted(s: &RouterSnapshot) -> Vec<&NhrpEntry> {
    let mut v: Vec<_> = s.nhrp.iter().collect();
    v.sort_by_key(|e| (e.kind == EntryType::Incomplete, e.prefix));
    v
}

pub(super) fn json(s: &RouterSnapshot) -> NhrpEntriesJson {
    NhrpEntriesJson {
        entries: sorted(s)
            .into_iter()
            .map(|e| NhrpEntryJson {
                prefix: e.prefix.to_string(),
                tunnel_address: e.via,
                nbma_address: e.nbma,
                kind: entry_type(e.kind),
                expires_in_seconds: e.expires_in.map(|d| d.as_secs()),
                claimed_nbma_address: e.claimed_nbma,
                age_seconds: e.age.as_secs(),
            })
            .collect(),
    }
}

/// The `Flags:` of an entry, from what the snapshot knows: `unique`, `registered`,
/// `router` (answered by the owner: a shortcut), `local`, `nhop` (the entry of a next hop
/// itself), `rib` (its route is installed), `nat`, `negative` (incomplete).
fn flags(s: &RouterSnapshot, e: &NhrpEntry) -> String {
    let mut f: Vec<&str> = Vec::new();
    if e.unique {
        f.push("unique");
    }
    match e.kind {
        EntryType::Registered => f.push("registered"),
        EntryType::Shortcut => f.push("router"),
        EntryType::Local => f.push("local"),
        EntryType::Incomplete => f.push("negative"),
        EntryType::Static => {}
    }
    if e.kind != EntryType::Incomplete && e.prefix.is_host() && e.prefix.addr() == e.via {
        f.push("nhop");
    }
    if s.routes.contains(&e.prefix) {
        f.push("rib");
    }
    if e.nat {
        f.push("nat");
    }
    f.join(" ")
}

/// IOS names registered and resolved entries alike "dynamic".
const fn type_text(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Static => "static",
        EntryType::Registered | EntryType::Shortcut => "dynamic",
        EntryType::Local => "local",
        EntryType::Incomplete => "incomplete",
    }
}

pub(super) fn text(s: &RouterSnapshot, detail: bool) -> String {
    let mut t = String::new();
    for e in sorted(s) {
        if e.kind == EntryType::Incomplete {
            out!(t, "{}", e.prefix);
        } else {
            out!(t, "{} via {}", e.prefix, e.via);
        }
        let expire = match e.expires_in {
            Some(d) => format!("expire {}", uptime(d)),
            None => "never expire".to_owned(),
        };
        out!(
            t,
            "   {} created {}, {expire}",
            s.tunnel_interface,
            uptime(e.age)
        );
        let flags = flags(s, e);
        if flags.is_empty() {
            out!(t, "   Type: {}, Flags:", type_text(e.kind));
        } else {
            out!(t, "   Type: {}, Flags: {flags}", type_text(e.kind));
        }
        if e.kind == EntryType::Incomplete {
            if detail {
                out!(t, "   Resolution asked of NBMA address: {}", e.nbma);
            }
            continue;
        }
        if e.claimed_nbma != e.nbma || (detail && e.nat) {
            out!(
                t,
                "   NBMA address: {} (Claimed NBMA address: {})",
                e.nbma,
                e.claimed_nbma
            );
        } else {
            out!(t, "   NBMA address: {}", e.nbma);
        }
        if detail && e.holdtime != 0 {
            out!(t, "   Holding time: {} sec", e.holdtime);
        }
    }
    t
}

/// The message types of `show ip nhrp traffic`, in IOS's order (ar$op.type 1-8).
const TYPES: [(Operation, &str, &str); 8] = [
    (
        Operation::ResolutionRequest,
        "Resolution Request",
        "resolutionRequest",
    ),
    (
        Operation::ResolutionReply,
        "Resolution Reply",
        "resolutionReply",
    ),
    (
        Operation::RegistrationRequest,
        "Registration Request",
        "registrationRequest",
    ),
    (
        Operation::RegistrationReply,
        "Registration Reply",
        "registrationReply",
    ),
    (Operation::PurgeRequest, "Purge Request", "purgeRequest"),
    (Operation::PurgeReply, "Purge Reply", "purgeReply"),
    (
        Operation::ErrorIndication,
        "Error Indication",
        "errorIndication",
    ),
    (
        Operation::TrafficIndication,
        "Traffic Indication",
        "trafficIndication",
    ),
];

/// The metric label of a message type: `resolution_request`, ..., `traffic_indication`.
pub(crate) fn operation_label(op: Operation) -> &'static str {
    match op {
        Operation::ResolutionRequest => "resolution_request",
        Operation::ResolutionReply => "resolution_reply",
        Operation::RegistrationRequest => "registration_request",
        Operation::RegistrationReply => "registration_reply",
        Operation::PurgeRequest => "purge_request",
        Operation::PurgeReply => "purge_reply",
        Operation::ErrorIndication => "error_indication",
        Operation::TrafficIndication => "traffic_indication",
        _ => "unknown",
    }
}

/// Every known message type, for metrics.
pub(crate) fn operations() -> impl Iterator<Item = Operation> {
    TYPES.iter().map(|(op, _, _)| *op)
}

/// `show ip nhrp traffic -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NhrpTrafficJson {
    /// Messages sent, by type (`resolutionRequest`, ...), and `total`.
    pub sent: serde_json::Map<String, serde_json::Value>,
    /// Messages received, by type, and `total`.
    pub received: serde_json::Map<String, serde_json::Value>,
    /// Packets dropped, by reason label (`authentication_mismatch`, ...).
    pub dropped: serde_json::Map<String, serde_json::Value>,
    /// Traffic Indications (redirects) not sent because of the rate limit.
    pub redirects_suppressed: u64,
    /// Registrations refused with a non-zero code.
    pub registrations_refused: u64,
}

fn per_type(p: &dmvpn_nhrp::counters::PerType) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("total".into(), p.total().into());
    for (op, _, key) in TYPES {
        m.insert(key.into(), p.get(op).into());
    }
    m
}

pub(super) fn traffic_json(s: &RouterSnapshot) -> NhrpTrafficJson {
    let c = &s.nhrp_traffic;
    NhrpTrafficJson {
        sent: per_type(&c.sent),
        received: per_type(&c.received),
        dropped: DropReason::ALL
            .iter()
            .map(|r| (r.label().to_owned(), c.dropped(*r).into()))
            .collect(),
        redirects_suppressed: c.redirects_suppressed,
        registrations_refused: c.registrations_refused,
    }
}

fn per_type_lines(t: &mut String, p: &dmvpn_nhrp::counters::PerType, suppressed: Option<u64>) {
    let mut items: Vec<String> = TYPES
        .iter()
        .map(|(op, name, _)| format!("{} {name}", p.get(*op)))
        .collect();
    if let Some(n) = suppressed {
        items.push(format!("{n} Redirect Suppress"));
    }
    for row in items.chunks(3) {
        out!(t, "         {}", row.join("  "));
    }
}

pub(super) fn traffic_text(s: &RouterSnapshot) -> String {
    let c = &s.nhrp_traffic;
    let mut t = String::new();
    out!(t, "{}:", s.tunnel_interface);
    out!(t, "   Sent: Total {}", c.sent.total());
    per_type_lines(&mut t, &c.sent, Some(c.redirects_suppressed));
    out!(t, "   Rcvd: Total {}", c.received.total());
    per_type_lines(&mut t, &c.received, None);
    out!(t, "   Dropped: Total {}", c.dropped_total());
    for r in DropReason::ALL {
        let n = c.dropped(r);
        if n != 0 {
            out!(t, "         {n} {}", r.label());
        }
    }
    out!(
        t,
        "   Refused: {} Registration, {} Cache Full, {} Peer Quota, {} Resolution",
        c.registrations_refused,
        c.cache_full,
        c.peer_quota_exceeded,
        c.resolutions_refused
    );
    t
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{hub, spoke};
    use super::*;

    #[test]
    fn spoke_cache_reads_like_ios() {
        let expected = "\
10.1.1.1/32 via 10.1.1.1
   dmvpn0 created 00:10:21, never expire
   Type: static, Flags: nhop
   NBMA address: 198.18.0.1
10.1.1.2/32 via 10.1.1.2
   dmvpn0 created 00:10:21, never expire
   Type: local, Flags: local nhop
   NBMA address: 198.18.0.2
10.1.1.3/32 via 10.1.1.3
   dmvpn0 created 00:00:05, expire 01:59:55
   Type: dynamic, Flags: router nhop rib
   NBMA address: 198.18.0.3
192.168.2.0/24 via 10.1.1.2
   dmvpn0 created 00:10:21, never expire
   Type: local, Flags: local
   NBMA address: 198.18.0.2
192.168.3.0/24 via 10.1.1.3
   dmvpn0 created 00:00:05, expire 01:59:55
   Type: dynamic, Flags: router rib
   NBMA address: 198.18.0.3
10.1.1.9/32
   dmvpn0 created 00:00:01, expire 00:00:02
   Type: incomplete, Flags: negative
";
        assert_eq!(text(&spoke(), false), expected);
    }

    #[test]
    fn hub_detail_shows_nat_and_holding_time() {
        let mut s = hub();
        s.nhrp.retain(|e| e.via.to_string() == "10.1.1.2");
        s.nhrp[0].nat = true;
        s.nhrp[0].claimed_nbma = "192.168.100.2".parse().unwrap();
        let expected = "\
10.1.1.2/32 via 10.1.1.2
   dmvpn0 created 00:10:21, expire 01:49:38
   Type: dynamic, Flags: unique registered nhop nat
   NBMA address: 198.18.0.2 (Claimed NBMA address: 192.168.100.2)
   Holding time: 7200 sec
192.168.2.0/24 via 10.1.1.2
   dmvpn0 created 00:10:21, expire 01:49:38
   Type: dynamic, Flags: registered rib
   NBMA address: 198.18.0.2
   Holding time: 7200 sec
";
        assert_eq!(text(&s, true), expected);
    }

    #[test]
    fn json_has_the_contract_fields() {
        let v = serde_json::to_value(json(&hub())).unwrap();
        let entries = v["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 5);
        for e in entries {
            for key in [
                "prefix",
                "tunnelAddress",
                "nbmaAddress",
                "type",
                "expiresInSeconds",
            ] {
                assert!(e.get(key).is_some(), "{key} missing in {e}");
            }
        }
        assert_eq!(entries[0]["prefix"], "10.1.1.1/32");
        assert_eq!(entries[0]["type"], "local");
        assert_eq!(entries[0]["expiresInSeconds"], serde_json::Value::Null);
        assert_eq!(entries[1]["prefix"], "10.1.1.2/32");
        assert_eq!(entries[1]["tunnelAddress"], "10.1.1.2");
        assert_eq!(entries[1]["nbmaAddress"], "198.18.0.2");
        assert_eq!(entries[1]["type"], "dynamic");
        assert_eq!(entries[1]["expiresInSeconds"], 6578);
        assert_eq!(entries[4]["prefix"], "192.168.2.0/24");
    }

    #[test]
    fn traffic_reads_like_ios_and_lists_drops() {
        let expected = "\
dmvpn0:
   Sent: Total 62
         0 Resolution Request  0 Resolution Reply  0 Registration Request
         58 Registration Reply  0 Purge Request  0 Purge Reply
         0 Error Indication  4 Traffic Indication  9 Redirect Suppress
   Rcvd: Total 58
         0 Resolution Request  0 Resolution Reply  58 Registration Request
         0 Registration Reply  0 Purge Request  0 Purge Reply
         0 Error Indication  0 Traffic Indication
   Dropped: Total 2
         2 authentication_mismatch
   Refused: 0 Registration, 0 Cache Full, 0 Peer Quota, 0 Resolution
";
        assert_eq!(traffic_text(&hub()), expected);
        let j = serde_json::to_value(traffic_json(&hub())).unwrap();
        assert_eq!(j["sent"]["registrationReply"], 58);
        assert_eq!(j["sent"]["total"], 62);
        assert_eq!(j["received"]["registrationRequest"], 58);
        assert_eq!(j["dropped"]["authentication_mismatch"], 2);
        assert_eq!(j["redirectsSuppressed"], 9);
    }
}
