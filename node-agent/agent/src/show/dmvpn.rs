//! `show dmvpn [detail]`: one row per peer (Cisco IOS `show dmvpn`), built from the NHRP
//! engine's peers (RFC 2332 cache) and the crypto state of each peer.

use core::net::IpAddr;

use dmvpn_nhrp::EntryType;
use dmvpn_nhrp::show::{DmvpnPeer, NhrpEntry};
use serde::Serialize;

use super::format::{entry_type, uptime};
use super::{LinkState, link_state, out};
use crate::snapshot::RouterSnapshot;

/// `show dmvpn -o json`: `{"peers":[...]}` (a contract: the field names never change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DmvpnJson {
    /// One element per peer, by tunnel address.
    pub peers: Vec<DmvpnPeerJson>,
}

/// One peer of `show dmvpn -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DmvpnPeerJson {
    /// The peer's tunnel address.
    pub tunnel_address: IpAddr,
    /// The peer's NBMA (underlay) address, as seen (post-NAT).
    pub nbma_address: IpAddr,
    /// `up`, `ike`, `nhrp` or `down`.
    pub state: LinkState,
    /// `static` (a configured NHS), `dynamic` (registered with us) or `shortcut` (resolved).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Seconds in the current state (the `UpDn Tm` column).
    pub uptime_seconds: u64,
    /// NHRP entries through the peer (the `# Ent` column).
    pub entries: usize,
    /// Whether the peer sits behind NAT (attribute `N`).
    pub nat: bool,
}

/// The type of a peer in the JSON: the contract knows `static`, `dynamic` and `shortcut`; a
/// peer known only from a resolution in flight counts as a shortcut.
const fn peer_type(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Incomplete => "shortcut",
        EntryType::Local => "static",
        k => entry_type(k),
    }
}

pub(crate) fn json(s: &RouterSnapshot) -> DmvpnJson {
    DmvpnJson {
        peers: s
            .dmvpn
            .peers
            .iter()
            .map(|p| DmvpnPeerJson {
                tunnel_address: p.tunnel,
                nbma_address: p.nbma,
                state: link_state(s, p),
                kind: peer_type(p.kind),
                uptime_seconds: p.up_down.as_secs(),
                entries: p.entries,
                nat: p.nat,
            })
            .collect(),
    }
}

const LEGEND: &str = "\
Legend: Attrb --> S - Static, D - Dynamic, I - Incomplete
        N - NATed, L - Local, X - No Socket
        T1 - Route Installed, T2 - Nexthop-override
        # Ent --> Number of NHRP entries with same NBMA peer
        NHS Status: E --> Expecting Replies, R --> Responding, W --> Waiting
        UpDn Time --> Up or Down Time for a Tunnel
==========================================================================
";

/// The NHRP entries through `peer`, sorted by prefix, as rows of the table.
fn peer_entries<'a>(s: &'a RouterSnapshot, peer: &DmvpnPeer) -> Vec<&'a NhrpEntry> {
    let mut v: Vec<_> = s
        .nhrp
        .iter()
        .filter(|e| e.via == peer.tunnel && e.kind != EntryType::Local)
        .collect();
    v.sort_by_key(|e| e.prefix);
    v
}

/// The `Attrb` column of one entry: `S`, `D`, or for a shortcut `DT2` (the peer's own
/// address: next-hop override) and `DT1` (a network behind it: route installed); `N` when
/// NATed.
fn attributes(kind: EntryType, entry: Option<&NhrpEntry>, nat: bool) -> String {
    let mut a = String::from(match kind {
        EntryType::Static => "S",
        EntryType::Registered => "D",
        EntryType::Shortcut => match entry {
            Some(e) if e.prefix.is_host() && e.prefix.addr() == e.via => "DT2",
            _ => "DT1",
        },
        EntryType::Incomplete => "I",
        EntryType::Local => "L",
    });
    if nat {
        a.push('N');
    }
    a
}

pub(super) fn text(s: &RouterSnapshot, detail: bool) -> String {
    let d = &s.dmvpn;
    let mut t = String::from(LEGEND);
    out!(t);
    let family = match d.tunnel {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    };
    let role = match d.role {
        dmvpn_nhrp::Role::Hub => "Hub",
        dmvpn_nhrp::Role::Spoke => "Spoke",
    };
    if detail {
        out!(
            t,
            "Interface {} is up/up, Addr. is {}, VRF \"\"",
            s.tunnel_interface,
            d.tunnel
        );
        out!(
            t,
            "   Tunnel Src./Dest. addr: {}/MGRE, Tunnel VRF \"\"",
            d.nbma
        );
        let transport = if s.insecure {
            "multi-GRE/UDP (RFC 8086), unprotected"
        } else {
            "multi-GRE/ESP-in-UDP (RFC 3948)"
        };
        out!(
            t,
            "   Protocol/Transport: \"{transport}\", NHRP network-id {}, MTU {}",
            d.network_id,
            s.tunnel_mtu
        );
        if !s.nhs.is_empty() {
            out!(t, "{family} NHS:");
            for n in &s.nhs {
                let status = if n.up { "RE" } else { "E" };
                out!(
                    t,
                    "{}  {status} NBMA Address: {} priority = {}",
                    n.tunnel,
                    n.nbma,
                    n.priority
                );
            }
        }
        out!(
            t,
            "Type:{role}, Total NBMA Peers ({family}): {}",
            d.peers.len()
        );
    } else {
        out!(
            t,
            "Interface: {}, {family} NHRP Details",
            s.tunnel_interface
        );
        out!(t, "Type:{role}, NHRP Peers:{},", d.peers.len());
    }
    out!(t);
    let w = d
        .peers
        .iter()
        .flat_map(|p| [p.nbma.to_string().len(), p.tunnel.to_string().len()])
        .fold(15, usize::max);
    let target_w = s
        .nhrp
        .iter()
        .map(|e| e.prefix.to_string().len())
        .fold(17, usize::max);
    if detail {
        out!(
            t,
            " # Ent {:>w$} {:>w$} State  UpDn Tm Attrb {:>target_w$}",
            "Peer NBMA Addr",
            "Peer Tunnel Add",
            "Target Network"
        );
        out!(
            t,
            " ----- {} {} ----- -------- ----- {}",
            "-".repeat(w),
            "-".repeat(w),
            "-".repeat(target_w)
        );
    } else {
        out!(
            t,
            " # Ent {:>w$} {:>w$} State  UpDn Tm Attrb",
            "Peer NBMA Addr",
            "Peer Tunnel Add"
        );
        out!(
            t,
            " ----- {} {} ----- -------- -----",
            "-".repeat(w),
            "-".repeat(w)
        );
    }
    for p in &d.peers {
        let state = link_state(s, p).text();
        let updn = uptime(p.up_down);
        let entries = peer_entries(s, p);
        // A shortcut shows one row per entry (DT1/DT2), and `detail` one row per target
        // network; otherwise one row per peer.
        let per_entry = detail || p.kind == EntryType::Shortcut;
        let rows: Vec<Option<&NhrpEntry>> = if per_entry && !entries.is_empty() {
            entries.iter().copied().map(Some).collect()
        } else {
            vec![entries.first().copied()]
        };
        for (i, e) in rows.iter().enumerate() {
            let (ent, nbma) = if i == 0 {
                (p.entries.to_string(), p.nbma.to_string())
            } else {
                (String::new(), String::new())
            };
            let attrb = attributes(p.kind, *e, p.nat);
            if detail {
                let target = e.map(|e| e.prefix.to_string()).unwrap_or_default();
                out!(
                    t,
                    "{ent:>6} {nbma:<w$} {:>w$} {state:>5} {updn:>8} {attrb:>5} {target:>target_w$}",
                    p.tunnel
                );
            } else {
                out!(
                    t,
                    "{ent:>6} {nbma:<w$} {:>w$} {state:>5} {updn:>8} {attrb:>5}",
                    p.tunnel
                );
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{hub, spoke};
    use super::*;

    #[test]
    fn hub_table_reads_like_ios() {
        let expected = "\
Legend: Attrb --> S - Static, D - Dynamic, I - Incomplete
        N - NATed, L - Local, X - No Socket
        T1 - Route Installed, T2 - Nexthop-override
        # Ent --> Number of NHRP entries with same NBMA peer
        NHS Status: E --> Expecting Replies, R --> Responding, W --> Waiting
        UpDn Time --> Up or Down Time for a Tunnel
==========================================================================

Interface: dmvpn0, IPv4 NHRP Details
Type:Hub, NHRP Peers:3,

 # Ent  Peer NBMA Addr Peer Tunnel Add State  UpDn Tm Attrb
 ----- --------------- --------------- ----- -------- -----
     2 198.18.0.2             10.1.1.2    UP 00:10:21     D
     1 198.18.0.3             10.1.1.3    UP    1d02h     D
     1 198.18.0.4             10.1.1.4   IKE 00:00:03     D
";
        assert_eq!(text(&hub(), false), expected);
    }

    #[test]
    fn spoke_table_shows_the_nhs_and_a_shortcut_entry_by_entry() {
        let expected = "\
Interface: dmvpn0, IPv4 NHRP Details
Type:Spoke, NHRP Peers:2,

 # Ent  Peer NBMA Addr Peer Tunnel Add State  UpDn Tm Attrb
 ----- --------------- --------------- ----- -------- -----
     1 198.18.0.1             10.1.1.1    UP 00:10:21     S
     2 198.18.0.3             10.1.1.3    UP 00:00:05   DT2
                              10.1.1.3    UP 00:00:05   DT1
";
        let t = text(&spoke(), false);
        assert_eq!(&t[LEGEND.len() + 1..], expected);
    }

    #[test]
    fn detail_names_each_target_network_and_the_nhs() {
        let t = text(&spoke(), true);
        let expected_tail = "\
Interface dmvpn0 is up/up, Addr. is 10.1.1.2, VRF \"\"
   Tunnel Src./Dest. addr: 198.18.0.2/MGRE, Tunnel VRF \"\"
   Protocol/Transport: \"multi-GRE/ESP-in-UDP (RFC 3948)\", NHRP network-id 1, MTU 1400
IPv4 NHS:
10.1.1.1  RE NBMA Address: 198.18.0.1 priority = 0
Type:Spoke, Total NBMA Peers (IPv4): 2

 # Ent  Peer NBMA Addr Peer Tunnel Add State  UpDn Tm Attrb    Target Network
 ----- --------------- --------------- ----- -------- ----- -----------------
     1 198.18.0.1             10.1.1.1    UP 00:10:21     S       10.1.1.1/32
     2 198.18.0.3             10.1.1.3    UP 00:00:05   DT2       10.1.1.3/32
                              10.1.1.3    UP 00:00:05   DT1    192.168.3.0/24
";
        assert_eq!(&t[LEGEND.len() + 1..], expected_tail);
    }

    #[test]
    fn json_has_the_contract_fields_and_values() {
        let v = serde_json::to_value(json(&hub())).unwrap();
        let peers = v["peers"].as_array().unwrap();
        assert_eq!(peers.len(), 3);
        for p in peers {
            for key in [
                "tunnelAddress",
                "nbmaAddress",
                "state",
                "type",
                "uptimeSeconds",
            ] {
                assert!(p.get(key).is_some(), "{key} missing in {p}");
            }
        }
        assert_eq!(peers[0]["tunnelAddress"], "10.1.1.2");
        assert_eq!(peers[0]["nbmaAddress"], "198.18.0.2");
        assert_eq!(peers[0]["state"], "up");
        assert_eq!(peers[0]["type"], "dynamic");
        assert_eq!(peers[0]["uptimeSeconds"], 621);
        assert_eq!(peers[2]["state"], "ike");
        let spoke = serde_json::to_value(json(&spoke())).unwrap();
        let types: Vec<_> = spoke["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types, ["static", "shortcut"]);
    }

    #[test]
    fn states_follow_the_crypto_layer_then_nhrp() {
        let mut s = hub();
        // No IKE SA and no ESP SA for 198.18.0.4 any more: DOWN.
        s.ike_sas
            .retain(|sa| sa.peer.ip() != "198.18.0.4".parse::<IpAddr>().unwrap());
        // 198.18.0.3's ESP SA stands, its registration is not accepted yet: NHRP.
        s.dmvpn.peers[1].state = dmvpn_nhrp::show::PeerState::Nhrp;
        let states: Vec<_> = s.dmvpn.peers.iter().map(|p| link_state(&s, p)).collect();
        assert_eq!(states, [LinkState::Up, LinkState::Nhrp, LinkState::Down]);
        // Unprotected GRE (tests only): NHRP alone decides.
        s.insecure = true;
        s.ipsec_sas.clear();
        let states: Vec<_> = s.dmvpn.peers.iter().map(|p| link_state(&s, p)).collect();
        assert_eq!(states, [LinkState::Up, LinkState::Nhrp, LinkState::Up]);
    }
}
