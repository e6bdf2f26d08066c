//! The driver's minimal ESP/GRE path: dmvpn-esp SAs built from the engine's CHILD_SA events
//! (RFC 7296 section 2.17), GRE probes sealed towards the peer and ESP from the peer opened
//! and counted (RFC 4303), all in UDP on port 4500 (RFC 3948).
//!
//! In tunnel mode, as strongSwan's kernel-libipsec carries it, the ESP payload is an inner
//! IPv4 packet of protocol 47 between the two underlay addresses (the GRE selectors); in
//! transport mode it is the GRE packet itself (Next Header 47). Only IPv4 underlays are
//! framed here, and ESP always travels in UDP: the engine's default forced encapsulation.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use dmvpn_esp::sa::{NEXT_HEADER_DUMMY, NEXT_HEADER_GRE, NEXT_HEADER_IPV4, PAYLOAD_OFFSET};
use dmvpn_esp::{InboundSa, OutboundSa, SaConfig};
use dmvpn_ike::{ChildSaUp, Mode};
use dmvpn_testkit::lab_gre;
use dmvpn_wire::{gre, ipv4};

use crate::summary::ChildSummary;

/// TTL of the inner IPv4 header in tunnel mode.
const INNER_TTL: u8 = 64;

/// A buffer large enough for any packet this path seals or receives.
pub const BUFFER_LEN: usize = 2048;

/// The sending half of an installed CHILD_SA.
#[derive(Debug)]
struct Outbound {
    sa: OutboundSa,
    inbound_spi: u32,
    outbound_spi: u32,
    mode: Mode,
    local: SocketAddr,
    remote: SocketAddr,
    peer: IpAddr,
    encr: String,
}

/// Where and how big a sealed probe is (it leaves from our port 4500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// The peer's outer address and port.
    pub remote: SocketAddr,
    /// Bytes of the ESP packet at the start of the buffer.
    pub len: usize,
}

/// The ESP SAs of the driver and its packet counters.
#[derive(Debug, Default)]
pub struct EspPath {
    inbound: HashMap<u32, (InboundSa, Mode)>,
    /// Newest last: probes go out on the newest SA (make-before-break).
    outbound: Vec<Outbound>,
    ident: u16,
    /// Probes sealed.
    pub sealed: u64,
    /// ESP packets opened.
    pub opened: u64,
    /// Opened packets that were GRE probes.
    pub gre_received: u64,
    /// Probes not sealed, by reason.
    pub send_errors: BTreeMap<String, u64>,
    /// ESP packets dropped, by reason.
    pub drops: BTreeMap<String, u64>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_owned()).or_default() += 1;
}

impl EspPath {
    /// Installs both directions of a new CHILD_SA; a rekeyed one takes over sending at once,
    /// its predecessor stays until the engine reports it down.
    ///
    /// # Errors
    /// The key material does not fit the cipher, or the SPI is reserved.
    pub fn install(&mut self, now: Instant, up: &ChildSaUp) -> Result<(), dmvpn_esp::ConfigError> {
        let config = |keys: &dmvpn_ike::EspKeys| SaConfig {
            spi: keys.spi,
            sequence_numbers: keys.sequence_numbers,
            lifetime: Default::default(),
        };
        let inbound = InboundSa::new(config(&up.inbound), &up.inbound.key, now)?;
        let outbound = OutboundSa::new(config(&up.outbound), &up.outbound.key, now)?;
        self.inbound.insert(up.inbound.spi, (inbound, up.mode));
        self.outbound.push(Outbound {
            sa: outbound,
            inbound_spi: up.inbound.spi,
            outbound_spi: up.outbound.spi,
            mode: up.mode,
            local: up.local,
            remote: up.remote,
            peer: up.peer,
            encr: up.outbound.algorithm.name().to_owned(),
        });
        Ok(())
    }

    /// Removes both directions of a CHILD_SA.
    pub fn remove(&mut self, inbound_spi: u32, outbound_spi: u32) {
        self.inbound.remove(&inbound_spi);
        self.outbound
            .retain(|o| o.inbound_spi != inbound_spi && o.outbound_spi != outbound_spi);
    }

    /// Whether a CHILD_SA is installed to send on.
    pub fn has_outbound(&self) -> bool {
        !self.outbound.is_empty()
    }

    /// The installed CHILD_SAs, oldest first.
    pub fn children(&self) -> Vec<ChildSummary> {
        self.outbound
            .iter()
            .map(|o| ChildSummary {
                peer: o.peer.to_string(),
                inbound_spi: format!("{:#010x}", o.inbound_spi),
                outbound_spi: format!("{:#010x}", o.outbound_spi),
                mode: match o.mode {
                    Mode::Tunnel => "tunnel",
                    Mode::Transport => "transport",
                }
                .to_owned(),
                encr: o.encr.clone(),
            })
            .collect()
    }

    /// Seals GRE probe `index` on the newest outbound SA into `buf` (at least
    /// [`BUFFER_LEN`] bytes), framed for the SA's mode.
    ///
    /// Returns `None`, counting why, when there is no SA or sealing fails.
    pub fn seal_probe(&mut self, now: Instant, index: u32, buf: &mut [u8]) -> Option<Sealed> {
        let Some(out) = self.outbound.last_mut() else {
            bump(&mut self.send_errors, "no_sa");
            return None;
        };
        let probe = lab_gre::probe(index);
        let (payload_len, next_header) = match (out.mode, out.local.ip(), out.peer) {
            (Mode::Transport, _, _) => {
                buf.get_mut(PAYLOAD_OFFSET..PAYLOAD_OFFSET + probe.len())?
                    .copy_from_slice(&probe);
                (probe.len(), NEXT_HEADER_GRE)
            }
            (Mode::Tunnel, IpAddr::V4(src), IpAddr::V4(dst)) => {
                self.ident = self.ident.wrapping_add(1);
                let len = inner_ipv4(src, dst, self.ident, &probe, buf.get_mut(PAYLOAD_OFFSET..)?)?;
                (len, NEXT_HEADER_IPV4)
            }
            (Mode::Tunnel, _, _) => {
                bump(&mut self.send_errors, "ipv6_tunnel_unsupported");
                return None;
            }
        };
        match out.sa.seal(now, buf, payload_len, next_header) {
            Ok(len) => {
                self.sealed += 1;
                Some(Sealed {
                    remote: out.remote,
                    len,
                })
            }
            Err(e) => {
                bump(&mut self.send_errors, e.metric_label());
                None
            }
        }
    }

    /// Counts a probe that was sealed but could not be sent.
    pub fn send_failed(&mut self) {
        bump(&mut self.send_errors, "send");
    }

    /// Opens an ESP packet received on port 4500 (the whole UDP payload, SPI first) in place
    /// and counts it: opened, a GRE probe, or dropped by reason.
    pub fn open(&mut self, now: Instant, packet: &mut [u8]) {
        let Some(spi) = packet
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            bump(&mut self.drops, "truncated");
            return;
        };
        let Some((sa, _)) = self.inbound.get_mut(&spi) else {
            bump(&mut self.drops, "unknown_spi");
            return;
        };
        let opened = match sa.open(now, packet) {
            Ok(o) => o,
            Err(e) => {
                bump(&mut self.drops, e.metric_label());
                return;
            }
        };
        self.opened += 1;
        let payload = packet.get(opened.payload).unwrap_or_default();
        let gre = match opened.next_header {
            NEXT_HEADER_GRE => Some(payload),
            NEXT_HEADER_IPV4 => inner_gre(payload),
            NEXT_HEADER_DUMMY => return,
            _ => None,
        };
        match gre {
            Some(gre) if lab_gre::is_probe(gre) => self.gre_received += 1,
            _ => bump(&mut self.drops, "not_a_probe"),
        }
    }
}

/// Writes an inner IPv4 header (protocol 47, DF) and `gre` into `buf`; returns the length.
fn inner_ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    gre: &[u8],
    buf: &mut [u8],
) -> Option<usize> {
    let repr = ipv4::Repr {
        src,
        dst,
        protocol: gre::IP_PROTOCOL,
        tos: 0,
        ident,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        ttl: INNER_TTL,
        options: &[],
        payload_len: gre.len(),
    };
    let header = repr.buffer_len();
    let len = header + gre.len();
    let out = buf.get_mut(..len)?;
    out[header..].copy_from_slice(gre);
    repr.emit(out).ok()?;
    Some(len)
}

/// The GRE packet inside an inner IPv4 packet of protocol 47 with a good header checksum.
fn inner_gre(packet: &[u8]) -> Option<&[u8]> {
    let p = ipv4::Packet::new_checked(packet).ok()?;
    let repr = ipv4::Repr::parse(&p).ok()?;
    if repr.protocol != gre::IP_PROTOCOL {
        return None;
    }
    let header = repr.buffer_len();
    packet.get(header..header + repr.payload_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmvpn_esp::{Algorithm, KeyMaterial, SequenceNumbers};
    use dmvpn_ike::EspKeys;

    fn keys(spi: u32, byte: u8) -> EspKeys {
        EspKeys {
            spi,
            algorithm: Algorithm::AesGcm16_256,
            sequence_numbers: SequenceNumbers::Short,
            key: KeyMaterial::new(Algorithm::AesGcm16_256, &[byte; 36]).unwrap(),
        }
    }

    /// Two ends of one CHILD_SA: `a` sends with SPI 0x1000 what `b` receives.
    fn pair(mode: Mode) -> (EspPath, EspPath) {
        let a_addr: IpAddr = "198.18.0.1".parse().unwrap();
        let b_addr: IpAddr = "198.18.0.2".parse().unwrap();
        let up = |local: IpAddr, peer: IpAddr, inb: EspKeys, out: EspKeys| ChildSaUp {
            peer,
            ike_spi_i: 1,
            ike_spi_r: 2,
            mode,
            udp_encap: true,
            local: SocketAddr::new(local, 4500),
            remote: SocketAddr::new(peer, 4500),
            inbound: inb,
            outbound: out,
            ts_local: Vec::new(),
            ts_remote: Vec::new(),
            replaces: None,
        };
        let now = Instant::now();
        let mut a = EspPath::default();
        let mut b = EspPath::default();
        a.install(now, &up(a_addr, b_addr, keys(0x2000, 2), keys(0x1000, 1)))
            .unwrap();
        b.install(now, &up(b_addr, a_addr, keys(0x1000, 1), keys(0x2000, 2)))
            .unwrap();
        (a, b)
    }

    #[test]
    fn tunnel_mode_probe_is_inner_ipv4_gre_and_opens_once() {
        let (mut a, mut b) = pair(Mode::Tunnel);
        let now = Instant::now();
        let mut buf = [0u8; BUFFER_LEN];
        let sealed = a.seal_probe(now, 3, &mut buf).unwrap();
        assert_eq!(sealed.remote, "198.18.0.2:4500".parse().unwrap());
        assert_eq!(&buf[..4], &0x1000u32.to_be_bytes());
        let packet = buf[..sealed.len].to_vec();
        let mut copy = packet.clone();
        b.open(now, &mut copy);
        // The inner header is checked: a probe in IPv4 protocol 47.
        assert_eq!((b.opened, b.gre_received), (1, 1));
        let inner = &copy[PAYLOAD_OFFSET..];
        assert_eq!((inner[0], inner[9]), (0x45, 47));
        assert_eq!(&inner[12..20], &[198, 18, 0, 1, 198, 18, 0, 2]);
        // Anti-replay: the same packet again is dropped and counted.
        let mut again = packet.clone();
        b.open(now, &mut again);
        assert_eq!(b.drops["replay_duplicate"], 1);
        // A flipped bit in a fresh packet fails the ICV; an unknown SPI is counted too.
        let sealed = a.seal_probe(now, 4, &mut buf).unwrap();
        let mut bad = buf[..sealed.len].to_vec();
        bad[30] ^= 1;
        b.open(now, &mut bad);
        assert_eq!(b.drops["icv"], 1);
        let mut unknown = packet;
        unknown[0] ^= 0x80;
        a.open(now, &mut unknown);
        assert_eq!(a.drops["unknown_spi"], 1);
        assert_eq!((b.opened, b.gre_received), (1, 1));
    }

    #[test]
    fn transport_mode_probe_is_bare_gre() {
        let (mut a, mut b) = pair(Mode::Transport);
        let now = Instant::now();
        let mut buf = [0u8; BUFFER_LEN];
        let sealed = a.seal_probe(now, 0, &mut buf).unwrap();
        b.open(now, &mut buf[..sealed.len]);
        assert_eq!((b.opened, b.gre_received), (1, 1));
        assert!(lab_gre::is_probe(&buf[PAYLOAD_OFFSET..]));
    }

    #[test]
    fn removed_sa_stops_sending_and_receiving() {
        let (mut a, mut b) = pair(Mode::Tunnel);
        let now = Instant::now();
        let mut buf = [0u8; BUFFER_LEN];
        let sealed = a.seal_probe(now, 0, &mut buf).unwrap();
        assert_eq!(b.children().len(), 1);
        b.remove(0x1000, 0x2000);
        assert!(b.children().is_empty());
        b.open(now, &mut buf[..sealed.len]);
        assert_eq!(b.drops["unknown_spi"], 1);
        a.remove(0x2000, 0x1000);
        assert!(a.seal_probe(now, 1, &mut buf).is_none());
        assert_eq!(a.send_errors["no_sa"], 1);
        assert_eq!(a.sealed, 1);
    }
}
