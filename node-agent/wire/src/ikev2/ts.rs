//! The Traffic Selector payloads TSi and TSr (RFC 7296 section 3.13) and their selectors
//! (section 3.13.1).
//!
//! ```text
//! Payload body:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Number of TSs |                 RESERVED                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       <Traffic Selectors>                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Traffic selector:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   TS Type     |IP Protocol ID*|       Selector Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Start Port*         |           End Port*           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                         Starting Address*                     ~
//! ~                         Ending Address*                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::{Ipv4Addr, Ipv6Addr};

use super::cursor::{Reader, Writer, len16};
use super::payload::Body;
use crate::{Element, Error, Result, Seq};

enum_with_unknown! {
    /// Traffic selector type (RFC 7296 section 3.13.1; IANA "IKEv2 Traffic Selector Types").
    pub enum TsType(u8) {
        /// A range of IPv4 addresses.
        Ipv4AddrRange = 7,
        /// A range of IPv6 addresses.
        Ipv6AddrRange = 8,
    }
}

/// Selector fields before the addresses (RFC 7296 section 3.13.1).
const SELECTOR_HEADER_LEN: usize = 8;

/// The address range of a traffic selector, by TS type (RFC 7296 section 3.13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TsAddresses<'a> {
    /// TS_IPV4_ADDR_RANGE.
    Ipv4 {
        /// First address of the range.
        start: Ipv4Addr,
        /// Last address of the range.
        end: Ipv4Addr,
    },
    /// TS_IPV6_ADDR_RANGE.
    Ipv6 {
        /// First address of the range.
        start: Ipv6Addr,
        /// Last address of the range.
        end: Ipv6Addr,
    },
    /// A TS type this codec does not know, with the bytes after the ports.
    Other {
        /// The TS type; never 7 or 8.
        ts_type: TsType,
        /// The rest of the selector.
        #[serde(serialize_with = "crate::hex::serialize")]
        data: &'a [u8],
    },
}

/// Splits the address bytes of a selector into start and end addresses of `N` bytes each.
///
/// # Errors
/// [`Error::BadLength`] unless there are exactly `2 * N` bytes.
fn halves<const N: usize>(data: &[u8]) -> Result<([u8; N], [u8; N])> {
    if data.len() != 2 * N {
        return Err(Error::BadLength);
    }
    let (start, end) = data.split_at(N);
    let array = |b: &[u8]| <[u8; N]>::try_from(b).map_err(|_| Error::BadLength);
    Ok((array(start)?, array(end)?))
}

/// One traffic selector (RFC 7296 section 3.13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrafficSelector<'a> {
    /// IP protocol (0 = any, 47 = GRE, ...).
    pub ip_protocol: u8,
    /// First port of the range (0 for any, or for protocols without ports).
    pub start_port: u16,
    /// Last port of the range (65535 for any).
    pub end_port: u16,
    /// The address range; its variant gives the TS type.
    pub addresses: TsAddresses<'a>,
}

impl TrafficSelector<'_> {
    /// A selector for one IPv4 host and one protocol, all ports: what a DMVPN node
    /// protects (`A/32[gre] === B/32[gre]`).
    pub const fn ipv4_host(addr: Ipv4Addr, ip_protocol: u8) -> Self {
        TrafficSelector {
            ip_protocol,
            start_port: 0,
            end_port: u16::MAX,
            addresses: TsAddresses::Ipv4 {
                start: addr,
                end: addr,
            },
        }
    }

    /// A selector for one IPv6 host and one protocol, all ports.
    pub const fn ipv6_host(addr: Ipv6Addr, ip_protocol: u8) -> Self {
        TrafficSelector {
            ip_protocol,
            start_port: 0,
            end_port: u16::MAX,
            addresses: TsAddresses::Ipv6 {
                start: addr,
                end: addr,
            },
        }
    }

    /// The TS type.
    pub fn ts_type(&self) -> TsType {
        match self.addresses {
            TsAddresses::Ipv4 { .. } => TsType::Ipv4AddrRange,
            TsAddresses::Ipv6 { .. } => TsType::Ipv6AddrRange,
            TsAddresses::Other { ts_type, .. } => ts_type,
        }
    }

    fn check(&self) -> Result<()> {
        if let TsAddresses::Other {
            ts_type: TsType::Ipv4AddrRange | TsType::Ipv6AddrRange,
            ..
        } = self.addresses
        {
            // Would parse back as an address range, or not at all.
            return Err(Error::Unrepresentable);
        }
        len16(self.wire_len()).map(drop)
    }
}

impl<'a> Element<'a> for TrafficSelector<'a> {
    fn parse_one(buf: &'a [u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let ts_type = TsType::from(r.u8()?);
        let ip_protocol = r.u8()?;
        let len = usize::from(r.u16()?);
        if len < SELECTOR_HEADER_LEN {
            return Err(Error::BadLength);
        }
        let start_port = r.u16()?;
        let end_port = r.u16()?;
        let data = buf.get(SELECTOR_HEADER_LEN..len).ok_or(Error::Truncated)?;
        let addresses = match ts_type {
            TsType::Ipv4AddrRange => {
                let (start, end) = halves::<4>(data)?;
                TsAddresses::Ipv4 {
                    start: start.into(),
                    end: end.into(),
                }
            }
            TsType::Ipv6AddrRange => {
                let (start, end) = halves::<16>(data)?;
                TsAddresses::Ipv6 {
                    start: start.into(),
                    end: end.into(),
                }
            }
            TsType::Unknown(_) => TsAddresses::Other { ts_type, data },
        };
        Ok((
            TrafficSelector {
                ip_protocol,
                start_port,
                end_port,
                addresses,
            },
            len,
        ))
    }

    fn wire_len(&self) -> usize {
        SELECTOR_HEADER_LEN
            + match self.addresses {
                TsAddresses::Ipv4 { .. } => 8,
                TsAddresses::Ipv6 { .. } => 32,
                TsAddresses::Other { data, .. } => data.len(),
            }
    }

    fn emit_one(&self, buf: &mut [u8]) {
        let mut w = Writer::new(buf);
        w.u8(self.ts_type().into());
        w.u8(self.ip_protocol);
        w.u16(self.wire_len() as u16);
        w.u16(self.start_port);
        w.u16(self.end_port);
        match self.addresses {
            TsAddresses::Ipv4 { start, end } => {
                w.bytes(&start.octets());
                w.bytes(&end.octets());
            }
            TsAddresses::Ipv6 { start, end } => {
                w.bytes(&start.octets());
                w.bytes(&end.octets());
            }
            TsAddresses::Other { data, .. } => w.bytes(data),
        }
    }
}

/// The TSi/TSr payload body (RFC 7296 section 3.13): the count, then the selectors.
impl<'a> Body<'a> for Seq<'a, TrafficSelector<'a>> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let count = usize::from(r.u8()?);
        r.bytes(3)?;
        let selectors = Seq::parse(r.rest())?;
        if selectors.len() != count {
            return Err(Error::BadLength);
        }
        Ok(selectors)
    }

    fn body_len(&self) -> usize {
        4 + self.wire_len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let count = u8::try_from(self.len()).map_err(|_| Error::Unrepresentable)?;
        self.iter().try_for_each(|ts| ts.check())?;
        let mut w = Writer::new(buf);
        w.u8(count);
        w.bytes(&[0; 3]);
        Seq::emit(self, w.tail());
        Ok(())
    }
}
