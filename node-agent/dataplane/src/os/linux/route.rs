//! Routes into the tunnel device through rtnetlink, marked with a route protocol number
//! (`ip route ... proto 212`) so that every route this agent made, on whatever interface a
//! crashed run left it, is listed and removed by [`crate::os::reconcile`]. Routes via a
//! gateway (a route agent's) are made the same way, under another marker.

use core::net::IpAddr;
use std::io;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope,
};
use rtnetlink::{Handle, RouteMessageBuilder};

use dmvpn_nhrp::Prefix;

use crate::os::{OsRoute, RouteTable};

/// The route protocol number that marks this agent's routes: unassigned in iproute2's
/// `rt_protos` and by FRR (which uses 186-196, nhrpd 191).
pub const DEFAULT_ROUTE_PROTOCOL: u8 = 212;
/// The main routing table (`RT_TABLE_MAIN`).
pub const MAIN_TABLE: u32 = 254;

/// The routing table through rtnetlink.
#[derive(Debug, Clone)]
pub struct LinuxRoutes {
    handle: Handle,
    protocol: u8,
    table: u32,
}

fn to_io(e: rtnetlink::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl LinuxRoutes {
    /// Opens a netlink connection (its task spawned on the current tokio runtime); routes
    /// are marked with `protocol` and live in `table`.
    ///
    /// # Errors
    /// The OS error of the netlink socket.
    pub fn connect(protocol: u8, table: u32) -> io::Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(LinuxRoutes {
            handle,
            protocol,
            table,
        })
    }

    fn message(&self, route: OsRoute) -> RouteMessage {
        let (addr, len) = (route.prefix.addr(), route.prefix.prefix_len());
        let mut msg = match (addr, route.via) {
            (IpAddr::V4(a), Some(IpAddr::V4(via))) => {
                RouteMessageBuilder::<core::net::Ipv4Addr>::new()
                    .destination_prefix(a, len)
                    .gateway(via)
                    .table_id(self.table)
                    .build()
            }
            (IpAddr::V6(a), Some(IpAddr::V6(via))) => {
                RouteMessageBuilder::<core::net::Ipv6Addr>::new()
                    .destination_prefix(a, len)
                    .gateway(via)
                    .table_id(self.table)
                    .build()
            }
            (IpAddr::V4(a), _) => RouteMessageBuilder::<core::net::Ipv4Addr>::new()
                .destination_prefix(a, len)
                .output_interface(route.ifindex)
                .protocol(RouteProtocol::Other(self.protocol))
                .scope(RouteScope::Link)
                .table_id(self.table)
                .build(),
            (IpAddr::V6(a), _) => RouteMessageBuilder::<core::net::Ipv6Addr>::new()
                .destination_prefix(a, len)
                .output_interface(route.ifindex)
                .protocol(RouteProtocol::Other(self.protocol))
                .table_id(self.table)
                .build(),
        };
        // The builders mark every route static; ours carry our own marker.
        msg.header.protocol = RouteProtocol::Other(self.protocol);
        msg
    }

    /// The route of `msg` if it is one of ours.
    fn ours(&self, msg: &RouteMessage) -> Option<OsRoute> {
        if u8::from(msg.header.protocol) != self.protocol {
            return None;
        }
        let mut table = u32::from(msg.header.table);
        let (mut dst, mut ifindex, mut via) = (None, None, None);
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = Some(IpAddr::V4(*a)),
                RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst = Some(IpAddr::V6(*a)),
                RouteAttribute::Oif(i) => ifindex = Some(*i),
                RouteAttribute::Gateway(RouteAddress::Inet(a)) => via = Some(IpAddr::V4(*a)),
                RouteAttribute::Gateway(RouteAddress::Inet6(a)) => via = Some(IpAddr::V6(*a)),
                _ => {}
            }
        }
        if table != self.table {
            return None;
        }
        let len = msg.header.destination_prefix_length;
        let dst = dst.unwrap_or(match msg.header.address_family {
            AddressFamily::Inet6 => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
        });
        // A route via a gateway is known by its gateway; the kernel picked its interface.
        let ifindex = if via.is_some() { 0 } else { ifindex? };
        Some(OsRoute {
            prefix: Prefix::new(dst, len).ok()?,
            ifindex,
            via,
        })
    }
}

impl RouteTable for LinuxRoutes {
    async fn list(&mut self) -> io::Result<Vec<OsRoute>> {
        let mut found = Vec::new();
        let requests = [
            RouteMessageBuilder::<core::net::Ipv4Addr>::new()
                .table_id(self.table)
                .build(),
            RouteMessageBuilder::<core::net::Ipv6Addr>::new()
                .table_id(self.table)
                .build(),
        ];
        for request in requests {
            let mut routes = self.handle.route().get(request).execute();
            while let Some(msg) = routes.try_next().await.map_err(to_io)? {
                found.extend(self.ours(&msg));
            }
        }
        Ok(found)
    }

    async fn add(&mut self, route: OsRoute) -> io::Result<()> {
        let msg = self.message(route);
        self.handle.route().add(msg).execute().await.map_err(to_io)
    }

    async fn del(&mut self, route: OsRoute) -> io::Result<()> {
        let msg = self.message(route);
        self.handle.route().del(msg).execute().await.map_err(to_io)
    }
}
