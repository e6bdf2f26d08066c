//! Link settings through rtnetlink, synchronously (one request, one acknowledgement), for
//! what must hold before a device is used: a `RTM_SETLINK` with `IFLA_GSO_MAX_SEGS` (`ip link
//! set DEV gso_max_segs N`), the most segments the kernel puts in one GSO super-packet for
//! the device.

use std::io;

use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// The largest acknowledgement: an error message quotes the request's header and, with
/// extended acknowledgements, its attributes.
const ACK_SIZE: usize = 4096;

/// Sets the GSO segment limit of the device with index `ifindex` to `segments`.
///
/// # Errors
/// The OS error of the netlink socket, or the kernel's refusal (its errno).
pub fn set_gso_max_segs(ifindex: u32, segments: u32) -> io::Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = ifindex;
    link.attributes.push(LinkAttribute::GsoMaxSegs(segments));
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::SetLink(link));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    request.header.sequence_number = 1;
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);

    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(&bytes, 0)?;
    let mut reply = Vec::with_capacity(ACK_SIZE);
    socket.recv(&mut reply, 0)?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    match reply.payload {
        NetlinkPayload::Error(e) if e.code.is_some() => Err(e.to_io()),
        NetlinkPayload::Error(_) => Ok(()),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "expected an acknowledgement, got netlink message type {}",
                other.message_type()
            ),
        )),
    }
}
