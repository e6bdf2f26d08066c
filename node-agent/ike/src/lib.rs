//! Sans-IO IKEv2 (RFC 7296) for kube-dmvpn: bytes and time in, datagrams, SA keys and events
//! out. No clock reads, sockets or randomness inside: the caller injects them.
#![forbid(unsafe_code)]

pub mod cert;
pub mod fragment;
pub mod signature;
