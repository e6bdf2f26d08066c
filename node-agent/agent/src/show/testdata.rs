//! Snapshots of the seed tutorial's routers (../shared/seeds/: hub 10.1.1.1, spokes 10.1.1.2
//! and 10.1.1.3, LANs 192.168.{1,2,3}.0/24) with the underlay moved to 198.18.0.0/15, for
//! the golden tests of the `show` tables and of the metrics.
#![allow(clippy::unwrap_used)]

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::time::Instant;

use dmvpn_dataplane::{Counters, PeerCounters};
use dmvpn_nhrp::show::{Dmvpn, DmvpnPeer, NhrpEntry, NhsStatus, PeerState};
use dmvpn_nhrp::{EntryType, Prefix, Role};

use crate::snapshot::{IkeSaInfo, IkeSaState, IpsecSaInfo, PeerTraffic, RouterSnapshot};

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(ip(a), l.parse().unwrap()).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn peer(tunnel: &str, nbma: &str, up_down: u64, kind: EntryType, entries: usize) -> DmvpnPeer {
    DmvpnPeer {
        nbma: ip(nbma),
        tunnel: ip(tunnel),
        state: PeerState::Up,
        up_down: secs(up_down),
        kind,
        nat: false,
        entries,
    }
}

fn entry(
    p: &str,
    via: &str,
    nbma: &str,
    kind: EntryType,
    age: u64,
    expires_in: Option<u64>,
) -> NhrpEntry {
    NhrpEntry {
        prefix: prefix(p),
        via: ip(via),
        nbma: ip(nbma),
        claimed_nbma: ip(nbma),
        kind,
        age: secs(age),
        expires_in: expires_in.map(secs),
        holdtime: 7200,
        unique: kind == EntryType::Registered,
        nat: false,
    }
}

fn base(role: Role, tunnel: &str, nbma: &str) -> RouterSnapshot {
    RouterSnapshot {
        taken_at: Instant::now(),
        role,
        tunnel_interface: "dmvpn0".into(),
        tunnel_address: ip(tunnel),
        tunnel_prefix_len: 24,
        tunnel_mtu: 1400,
        underlay_address: ip(nbma),
        insecure: false,
        dmvpn: Dmvpn {
            role,
            tunnel: ip(tunnel),
            nbma: ip(nbma),
            network_id: 1,
            peers: Vec::new(),
        },
        nhrp: Vec::new(),
        nhs: Vec::new(),
        nhrp_traffic: dmvpn_nhrp::Counters::default(),
        dataplane: Counters::default(),
        peers: Vec::new(),
        ipsec_sas: Vec::new(),
        ike_sas: Vec::new(),
        ike_failures: Default::default(),
        routes: Vec::new(),
        os_drops: Default::default(),
    }
}

/// The hub: spoke 1 registered 10.1.1.2/32 and its LAN, spoke 2 (up for a day) its tunnel
/// address, and a third spoke whose IKE SA is being negotiated again.
pub(crate) fn hub() -> RouterSnapshot {
    let mut s = base(Role::Hub, "10.1.1.1", "198.18.0.1");
    s.dmvpn.peers = vec![
        peer("10.1.1.2", "198.18.0.2", 621, EntryType::Registered, 2),
        peer("10.1.1.3", "198.18.0.3", 93_659, EntryType::Registered, 1),
        peer("10.1.1.4", "198.18.0.4", 3, EntryType::Registered, 1),
    ];
    s.nhrp = vec![
        entry(
            "10.1.1.1/32",
            "10.1.1.1",
            "198.18.0.1",
            EntryType::Local,
            93_700,
            None,
        ),
        entry(
            "10.1.1.2/32",
            "10.1.1.2",
            "198.18.0.2",
            EntryType::Registered,
            621,
            Some(6578),
        ),
        entry(
            "10.1.1.3/32",
            "10.1.1.3",
            "198.18.0.3",
            EntryType::Registered,
            93_659,
            Some(7000),
        ),
        entry(
            "10.1.1.4/32",
            "10.1.1.4",
            "198.18.0.4",
            EntryType::Registered,
            3,
            Some(7197),
        ),
        entry(
            "192.168.2.0/24",
            "10.1.1.2",
            "198.18.0.2",
            EntryType::Registered,
            621,
            Some(6578),
        ),
    ];
    s.nhrp[4].unique = false;
    let mut t = dmvpn_nhrp::Counters::default();
    // Indexed by ar$op.type: 3 registration requests, 4 replies, 8 traffic indications.
    t.received.0[3] = 58;
    t.sent.0[4] = 58;
    t.sent.0[8] = 4;
    t.redirects_suppressed = 9;
    t.dropped[dmvpn_nhrp::DropReason::AuthenticationMismatch as usize] = 2;
    s.nhrp_traffic = t;
    s.peers = vec![
        PeerTraffic {
            nbma: ip("198.18.0.2"),
            counters: PeerCounters {
                tx_packets: 215,
                tx_bytes: 30_100,
                rx_packets: 204,
                rx_bytes: 28_560,
            },
        },
        PeerTraffic {
            nbma: ip("198.18.0.3"),
            counters: PeerCounters {
                tx_packets: 220,
                tx_bytes: 30_800,
                rx_packets: 209,
                rx_bytes: 29_260,
            },
        },
    ];
    // The seed's `show crypto ipsec sa` counters and SPIs.
    s.ipsec_sas = vec![
        IpsecSaInfo {
            peer: ip("198.18.0.2"),
            endpoint: sock("198.18.0.2:4500"),
            inbound_spi: 0xFD59_AC3E,
            outbound_spi: 0xC32C_6D83,
            packets_encaps: 215,
            packets_decaps: 204,
            replay_drops: 0,
            auth_failures: 0,
        },
        IpsecSaInfo {
            peer: ip("198.18.0.3"),
            endpoint: sock("198.18.0.3:4500"),
            inbound_spi: 0xD59E_7E94,
            outbound_spi: 0xAB1C_8A2A,
            packets_encaps: 220,
            packets_decaps: 209,
            replay_drops: 3,
            auth_failures: 1,
        },
    ];
    s.ike_sas = vec![
        IkeSaInfo {
            peer: sock("198.18.0.2:500"),
            spi_i: 0x8d9f_8b3f_1d9c_6c2a,
            spi_r: 0x7f01_0203_0405_0607,
            state: IkeSaState::Established,
            uptime: secs(735),
        },
        IkeSaInfo {
            peer: sock("198.18.0.3:4500"),
            spi_i: 0x1111_2222_3333_4444,
            spi_r: 0x5555_6666_7777_8888,
            state: IkeSaState::Established,
            uptime: secs(93_660),
        },
        IkeSaInfo {
            peer: sock("198.18.0.4:500"),
            spi_i: 0x0102_0304_0506_0708,
            spi_r: 0,
            state: IkeSaState::Connecting,
            uptime: secs(0),
        },
    ];
    s.routes = vec![prefix("192.168.2.0/24")];
    s
}

/// Spoke 1: registered with the hub, and a shortcut to spoke 2 (its tunnel address and
/// its LAN) while a resolution for 10.1.1.9 is in flight.
pub(crate) fn spoke() -> RouterSnapshot {
    let mut s = base(Role::Spoke, "10.1.1.2", "198.18.0.2");
    s.dmvpn.peers = vec![
        peer("10.1.1.1", "198.18.0.1", 621, EntryType::Static, 1),
        peer("10.1.1.3", "198.18.0.3", 5, EntryType::Shortcut, 2),
    ];
    s.nhrp = vec![
        entry(
            "10.1.1.1/32",
            "10.1.1.1",
            "198.18.0.1",
            EntryType::Static,
            621,
            None,
        ),
        entry(
            "10.1.1.2/32",
            "10.1.1.2",
            "198.18.0.2",
            EntryType::Local,
            621,
            None,
        ),
        entry(
            "10.1.1.3/32",
            "10.1.1.3",
            "198.18.0.3",
            EntryType::Shortcut,
            5,
            Some(7195),
        ),
        entry(
            "192.168.2.0/24",
            "10.1.1.2",
            "198.18.0.2",
            EntryType::Local,
            621,
            None,
        ),
        entry(
            "192.168.3.0/24",
            "10.1.1.3",
            "198.18.0.3",
            EntryType::Shortcut,
            5,
            Some(7195),
        ),
        entry(
            "10.1.1.9/32",
            "10.1.1.9",
            "198.18.0.1",
            EntryType::Incomplete,
            1,
            Some(2),
        ),
    ];
    s.nhs = vec![NhsStatus {
        tunnel: ip("10.1.1.1"),
        nbma: ip("198.18.0.1"),
        priority: 0,
        up: true,
        since: secs(621),
        unanswered: 0,
        request_id: 7,
        nat_nbma: None,
        codes: vec![0, 0],
    }];
    s.ipsec_sas = vec![
        IpsecSaInfo {
            peer: ip("198.18.0.1"),
            endpoint: sock("198.18.0.1:4500"),
            inbound_spi: 0xC32C_6D83,
            outbound_spi: 0xFD59_AC3E,
            packets_encaps: 204,
            packets_decaps: 215,
            replay_drops: 0,
            auth_failures: 0,
        },
        IpsecSaInfo {
            peer: ip("198.18.0.3"),
            endpoint: sock("198.18.0.3:4500"),
            inbound_spi: 0x0000_1234,
            outbound_spi: 0x0000_5678,
            packets_encaps: 12,
            packets_decaps: 11,
            replay_drops: 0,
            auth_failures: 0,
        },
    ];
    s.ike_sas = vec![
        IkeSaInfo {
            peer: sock("198.18.0.1:500"),
            spi_i: 0x8d9f_8b3f_1d9c_6c2a,
            spi_r: 0x7f01_0203_0405_0607,
            state: IkeSaState::Established,
            uptime: secs(735),
        },
        IkeSaInfo {
            peer: sock("198.18.0.3:500"),
            spi_i: 0xaaaa_bbbb_cccc_dddd,
            spi_r: 0xeeee_ffff_0000_1111,
            state: IkeSaState::Established,
            uptime: secs(5),
        },
    ];
    s.peers = vec![PeerTraffic {
        nbma: ip("198.18.0.1"),
        counters: PeerCounters {
            tx_packets: 204,
            tx_bytes: 28_560,
            rx_packets: 215,
            rx_bytes: 30_100,
        },
    }];
    s.routes = vec![prefix("192.168.3.0/24"), prefix("10.1.1.3/32")];
    s
}
