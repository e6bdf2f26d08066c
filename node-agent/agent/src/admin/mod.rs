//! The admin socket: `dmvpnctl show ...` and `clear ...` against a running agent, over a
//! Unix socket (config `admin.socket`), in the place of IOS's exec prompt.
//!
//! The agent runs [`serve`] (or [`AdminServer::bind`] then [`AdminServer::run`]) with the
//! driver's snapshot channel and a command channel; `dmvpnctl` calls [`request`]. The wire
//! format is in [`protocol`].

mod client;
pub mod protocol;
mod server;

pub use client::{ClientError, request};
pub use protocol::{AdminCommand, Command, Request, Response, UnknownCommand};
pub use server::{AdminServer, serve};
