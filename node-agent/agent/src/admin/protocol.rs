//! The admin protocol: one JSON request per line, one JSON response per line.
//!
//! ```text
//! -> {"command":"show dmvpn","detail":false}
//! <- {"ok":true,"text":"Legend: ...","json":{"peers":[...]}}
//! -> {"command":"clear ip nhrp"}
//! <- {"ok":true,"text":"","json":null}
//! -> {"command":"show bgp"}
//! <- {"ok":false,"error":"unknown command `show bgp`: ..."}
//! ```
//!
//! A `show` answers with both renderings; `dmvpnctl` prints the one asked for with `-o`.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::show::Show;

/// The longest request line the agent reads; longer ones are refused.
pub const MAX_REQUEST_LEN: usize = 4096;

/// A request: a command as the operator types it and whether `detail` was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `show dmvpn`, `show ip nhrp`, `show ip nhrp traffic`, `show crypto session`,
    /// `show crypto ikev2 sa`, `show crypto ipsec sa`, `clear ip nhrp`, `clear crypto sa`;
    /// `detail` may also end the command (`show dmvpn detail`).
    pub command: String,
    /// `detail` (for `show dmvpn` and `show ip nhrp`).
    #[serde(default)]
    pub detail: bool,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the command was carried out.
    pub ok: bool,
    /// The text rendering (empty for a `clear`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// The JSON rendering (`null` for a `clear`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub json: serde_json::Value,
    /// What went wrong, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A failure with `error`.
    pub fn error(error: impl Into<String>) -> Self {
        Response {
            ok: false,
            text: String::new(),
            json: serde_json::Value::Null,
            error: Some(error.into()),
        }
    }
}

/// A command for the driver, from `clear ...`; the next snapshot shows its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    /// `clear ip nhrp`: drop the dynamic NHRP cache entries (registrations at a hub,
    /// shortcuts at a spoke); a spoke registers again.
    ClearIpNhrp,
    /// `clear crypto sa`: delete every IKE and ESP SA (RFC 7296 section 1.4.1) so that they
    /// are negotiated again.
    ClearCryptoSa,
}

/// A parsed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// A `show`, answered from the latest snapshot.
    Show(Show),
    /// A `clear`, handed to the driver.
    Clear(AdminCommand),
}

/// Every command, as the operator types it.
pub const COMMANDS: [&str; 10] = [
    "show dmvpn",
    "show dmvpn detail",
    "show ip nhrp",
    "show ip nhrp detail",
    "show ip nhrp traffic",
    "show crypto session",
    "show crypto ikev2 sa",
    "show crypto ipsec sa",
    "clear ip nhrp",
    "clear crypto sa",
];

/// A command that is not one of [`COMMANDS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown command `{0}`: one of {list}", list = COMMANDS.join(", "))]
pub struct UnknownCommand(pub String);

impl Command {
    /// Parses a request: the words of `command` (single spaces or not), with `detail` either
    /// as a last word or as the flag.
    ///
    /// # Errors
    /// [`UnknownCommand`] for anything else, `detail` on a command that has none included.
    pub fn parse(request: &Request) -> Result<Self, UnknownCommand> {
        let mut words: Vec<&str> = request.command.split_whitespace().collect();
        let mut detail = request.detail;
        if words.last() == Some(&"detail") {
            words.pop();
            detail = true;
        }
        let unknown = || UnknownCommand(request.command.clone());
        let show = match (words.as_slice(), detail) {
            (["show", "dmvpn"], detail) => Show::Dmvpn { detail },
            (["show", "ip", "nhrp"], detail) => Show::IpNhrp { detail },
            (["show", "ip", "nhrp", "traffic"], false) => Show::IpNhrpTraffic,
            (["show", "crypto", "session"], false) => Show::CryptoSession,
            (["show", "crypto", "ikev2", "sa"], false) => Show::CryptoIkev2Sa,
            (["show", "crypto", "ipsec", "sa"], false) => Show::CryptoIpsecSa,
            (["clear", "ip", "nhrp"], false) => {
                return Ok(Command::Clear(AdminCommand::ClearIpNhrp));
            }
            (["clear", "crypto", "sa"], false) => {
                return Ok(Command::Clear(AdminCommand::ClearCryptoSa));
            }
            _ => return Err(unknown()),
        };
        Ok(Command::Show(show))
    }
}

impl FromStr for Command {
    type Err = UnknownCommand;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Command::parse(&Request {
            command: s.to_owned(),
            detail: false,
        })
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, detail) = match self {
            Command::Show(Show::Dmvpn { detail }) => ("show dmvpn", *detail),
            Command::Show(Show::IpNhrp { detail }) => ("show ip nhrp", *detail),
            Command::Show(Show::IpNhrpTraffic) => ("show ip nhrp traffic", false),
            Command::Show(Show::CryptoSession) => ("show crypto session", false),
            Command::Show(Show::CryptoIkev2Sa) => ("show crypto ikev2 sa", false),
            Command::Show(Show::CryptoIpsecSa) => ("show crypto ipsec sa", false),
            Command::Clear(AdminCommand::ClearIpNhrp) => ("clear ip nhrp", false),
            Command::Clear(AdminCommand::ClearCryptoSa) => ("clear crypto sa", false),
        };
        f.write_str(s)?;
        if detail {
            f.write_str(" detail")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_command_parses_and_prints_back() {
        for c in COMMANDS {
            let parsed: Command = c.parse().unwrap();
            assert_eq!(parsed.to_string(), c);
        }
    }

    #[test]
    fn detail_is_a_word_or_a_flag() {
        let r: Request = serde_json::from_str(r#"{"command":"show dmvpn","detail":true}"#).unwrap();
        assert_eq!(
            Command::parse(&r).unwrap(),
            Command::Show(Show::Dmvpn { detail: true })
        );
        let r: Request = serde_json::from_str(r#"{"command":"show  ip   nhrp"}"#).unwrap();
        assert_eq!(
            Command::parse(&r).unwrap(),
            Command::Show(Show::IpNhrp { detail: false })
        );
    }

    #[test]
    fn unknown_commands_and_misplaced_detail_are_refused_with_the_list() {
        for bad in [
            "show bgp",
            "show",
            "",
            "show crypto ipsec sa detail",
            "clear ip nhrp detail",
            "show dmvpn extra",
        ] {
            let e = bad.parse::<Command>().unwrap_err();
            assert!(e.to_string().contains("show crypto ipsec sa"), "{e}");
        }
        assert!(serde_json::from_str::<Request>(r#"{"command":"show dmvpn","x":1}"#).is_err());
    }
}
