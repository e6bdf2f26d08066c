//! Reading pcap and pcapng files (through the `pcap-file` crate) and stripping link layers.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The capture's path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is neither pcap nor pcapng, or is corrupt.
    #[error("{path} is not a readable pcap or pcapng capture: {source}")]
    Format {
        /// The capture's path.
        path: String,
        /// What the pcap reader said.
        source: pcap_file::PcapError,
    },
}

/// The link layers the decoder strips to reach an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LinkType {
    /// Ethernet II, with 802.1Q tags skipped.
    Ethernet,
    /// Raw IPv4 or IPv6 (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6): TUN captures.
    Raw,
    /// Linux cooked capture v1 (`tcpdump -i any`).
    LinuxSll,
    /// Linux cooked capture v2.
    LinuxSll2,
    /// BSD loopback (LINKTYPE_NULL / LOOP).
    Null,
    /// Anything else, by LINKTYPE number.
    Other(u32),
}

impl From<DataLink> for LinkType {
    fn from(link: DataLink) -> Self {
        match link {
            DataLink::ETHERNET => LinkType::Ethernet,
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => LinkType::Raw,
            DataLink::LINUX_SLL => LinkType::LinuxSll,
            DataLink::LINUX_SLL2 => LinkType::LinuxSll2,
            DataLink::NULL | DataLink::LOOP => LinkType::Null,
            other => LinkType::Other(u32::from(other)),
        }
    }
}

impl LinkType {
    /// The network-layer bytes of a frame, or `None` when the frame is not IP or the link
    /// type is unknown.
    pub fn strip(self, frame: &[u8]) -> Option<&[u8]> {
        const ETHERTYPE_IPV4: u16 = 0x0800;
        const ETHERTYPE_IPV6: u16 = 0x86dd;
        const ETHERTYPE_VLAN: [u16; 2] = [0x8100, 0x88a8];
        let be16 = |at: usize| {
            frame
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let is_ip = |t: u16| t == ETHERTYPE_IPV4 || t == ETHERTYPE_IPV6;
        match self {
            LinkType::Raw => Some(frame),
            LinkType::Ethernet => {
                let mut at = 12;
                let mut ty = be16(at)?;
                while ETHERTYPE_VLAN.contains(&ty) {
                    at += 4;
                    ty = be16(at)?;
                }
                is_ip(ty).then(|| frame.get(at + 2..)).flatten()
            }
            LinkType::LinuxSll => is_ip(be16(14)?).then(|| frame.get(16..)).flatten(),
            LinkType::LinuxSll2 => is_ip(be16(0)?).then(|| frame.get(20..)).flatten(),
            LinkType::Null => frame.get(4..),
            LinkType::Other(_) => None,
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Time since the epoch.
    pub timestamp: Duration,
    /// The frame's link type.
    pub link: LinkType,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// Reads every frame of a pcap or pcapng file (told apart by their magic numbers).
///
/// # Errors
/// [`CaptureError`] when the file cannot be read or parsed.
pub fn read_capture(path: &Path) -> Result<Vec<RawFrame>, CaptureError> {
    let display = path.display().to_string();
    let io = |source| CaptureError::Io {
        path: display.clone(),
        source,
    };
    let format = |source| CaptureError::Format {
        path: display.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    // pcapng starts with a Section Header Block, type 0x0A0D0D0A in either byte order.
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        read_pcapng(&bytes[..]).map_err(format)
    } else {
        read_pcap(&bytes[..]).map_err(format)
    }
}

fn read_pcap(bytes: &[u8]) -> Result<Vec<RawFrame>, pcap_file::PcapError> {
    let mut reader = PcapReader::new(bytes)?;
    let link = LinkType::from(reader.header().datalink);
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet?;
        frames.push(RawFrame {
            timestamp: packet.timestamp,
            link,
            data: packet.data.into_owned(),
        });
    }
    Ok(frames)
}

fn read_pcapng(bytes: &[u8]) -> Result<Vec<RawFrame>, pcap_file::PcapError> {
    let mut reader = PcapNgReader::new(bytes)?;
    let mut frames = Vec::new();
    while let Some(block) = reader.next_block() {
        let (timestamp, interface, data) = match block? {
            Block::EnhancedPacket(epb) => (epb.timestamp, epb.interface_id, epb.data.into_owned()),
            Block::SimplePacket(spb) => (Duration::ZERO, 0, spb.data.into_owned()),
            _ => continue,
        };
        let link = reader
            .interfaces()
            .get(interface as usize)
            .map_or(LinkType::Other(u32::MAX), |idb| {
                LinkType::from(idb.linktype)
            });
        frames.push(RawFrame {
            timestamp,
            link,
            data,
        });
    }
    Ok(frames)
}
