//! The driver's command line, and the engine configuration it makes: identity and PSK (RFC
//! 7296 sections 3.5 and 2.15), strongSwan-style proposals, the CHILD_SA mode (section
//! 1.3.1), timers, and what the driver does on its own (initiate, rekey, delete, send).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use dmvpn_ike::{Config, Identity, PskAuthenticator};

/// The CHILD_SA mode to request as initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// USE_TRANSPORT_MODE, the DMVPN shape; falls back to tunnel when the responder does
    /// not confirm it.
    Transport,
    /// Tunnel mode.
    Tunnel,
}

/// `dmvpn-ike-peer`: runs the dmvpn-ike engine on UDP 500 and 4500 of one address, with a
/// minimal ESP/GRE path, for interop tests against strongSwan.
#[derive(Debug, Clone, Parser)]
#[command(name = "dmvpn-ike-peer", version)]
pub struct Args {
    /// Our underlay address: sockets on its UDP ports 500 and 4500, our default identity.
    #[arg(long)]
    pub local: IpAddr,
    /// A file holding the pre-shared key (its bytes, as they are).
    #[arg(long)]
    pub psk_file: PathBuf,
    /// An IKE proposal in strongSwan syntax, in preference order (repeatable).
    #[arg(long = "ike-proposal", default_value = "aes256gcm16-prfsha256-x25519")]
    pub ike_proposals: Vec<String>,
    /// An ESP proposal in strongSwan syntax, in preference order (repeatable).
    #[arg(long = "esp-proposal", default_value = "aes256gcm16")]
    pub esp_proposals: Vec<String>,
    /// The mode we request when we initiate.
    #[arg(long, value_enum, default_value_t = ModeArg::Transport)]
    pub mode: ModeArg,
    /// Our IKE identity: an IP address, `fqdn:NAME` or `keyid:HEX`; our address by default.
    #[arg(long)]
    pub identity: Option<String>,
    /// Bring up an IKE SA and a CHILD_SA with this peer at start.
    #[arg(long)]
    pub initiate: Option<IpAddr>,
    /// Rekey the CHILD_SAs this many seconds after the first CHILD_SA came up.
    #[arg(long)]
    pub rekey_child_after: Option<f64>,
    /// Rekey the IKE SA this many seconds after the first CHILD_SA came up.
    #[arg(long)]
    pub rekey_ike_after: Option<f64>,
    /// Delete the IKE SA this many seconds after the first CHILD_SA came up.
    #[arg(long)]
    pub delete_after: Option<f64>,
    /// Dead peer detection after this many idle seconds; 0 turns it off (engine default
    /// otherwise).
    #[arg(long)]
    pub dpd: Option<f64>,
    /// First retransmission timeout in milliseconds (doubled per try).
    #[arg(long)]
    pub retransmit_timeout_ms: Option<u64>,
    /// Transmissions of a request before the peer is declared dead.
    #[arg(long)]
    pub retransmit_tries: Option<u32>,
    /// Half-open SAs from which IKE_SA_INIT requests must carry a COOKIE (RFC 7296 section
    /// 2.6); 0 demands one of every initiator (engine default otherwise).
    #[arg(long)]
    pub cookie_threshold: Option<usize>,
    /// Seconds a rekeyed CHILD_SA lives beside its successor before we delete it, when we
    /// started the rekey (engine default otherwise).
    #[arg(long)]
    pub rekey_overlap: Option<f64>,
    /// Keep this file current with the key log JSON of every SA (secrets: tests only).
    #[arg(long)]
    pub key_log: Option<PathBuf>,
    /// GRE probes to send to the peer once a CHILD_SA is up (more with `send N`).
    #[arg(long, default_value_t = 0)]
    pub gre_count: u64,
    /// Probes per second.
    #[arg(long, default_value_t = 10.0)]
    pub gre_rate: f64,
    /// Exit (printing the summary) after this many seconds; SIGTERM otherwise.
    #[arg(long)]
    pub run_for: Option<f64>,
    /// A Unix datagram socket to bind for commands: `status` (answered with the summary
    /// JSON), `rekey-child`, `rekey-ike`, `delete`, `initiate ADDR`, `send N`.
    #[arg(long)]
    pub control: Option<PathBuf>,
}

/// Seconds from the command line as a duration.
///
/// # Errors
/// A negative, infinite or NaN number.
pub fn seconds(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{s} is not a number of seconds"))
}

/// Parses an identity argument (RFC 7296 section 3.5).
///
/// # Errors
/// A `keyid:` that is not hex, or text that is no address and has no known prefix.
pub fn parse_identity(text: &str) -> anyhow::Result<Identity> {
    if let Some(name) = text.strip_prefix("fqdn:") {
        return Ok(Identity::fqdn(name));
    }
    if let Some(hex) = text.strip_prefix("keyid:") {
        if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("keyid:{hex}: not an even number of hex digits");
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()?;
        return Ok(Identity::key_id(&bytes));
    }
    match text.parse::<IpAddr>() {
        Ok(addr) => Ok(Identity::address(addr)),
        Err(_) => bail!("identity {text}: an address, fqdn:NAME or keyid:HEX"),
    }
}

impl Args {
    /// The engine configuration, with the key log on when a file is given.
    ///
    /// # Errors
    /// A refused proposal (3DES, MD5, modp1024 ... name their replacement), a bad identity
    /// or duration, or an unreadable PSK file.
    pub fn config(&self) -> anyhow::Result<Config> {
        let psk = std::fs::read(&self.psk_file)
            .with_context(|| format!("reading {}", self.psk_file.display()))?;
        let ike: Vec<&str> = self.ike_proposals.iter().map(String::as_str).collect();
        let esp: Vec<&str> = self.esp_proposals.iter().map(String::as_str).collect();
        let mut config = Config::new(self.local, Arc::new(PskAuthenticator::new(&psk)))
            .with_proposals(&ike, &esp)?;
        config.mode = match self.mode {
            ModeArg::Transport => dmvpn_ike::Mode::Transport,
            ModeArg::Tunnel => dmvpn_ike::Mode::Tunnel,
        };
        if let Some(id) = &self.identity {
            config.identity = Some(parse_identity(id)?);
        }
        if let Some(dpd) = self.dpd {
            config.dpd_interval = Some(seconds(dpd)?).filter(|d| !d.is_zero());
        }
        if let Some(ms) = self.retransmit_timeout_ms {
            config.retransmit_timeout = Duration::from_millis(ms);
        }
        if let Some(tries) = self.retransmit_tries {
            config.retransmit_tries = tries;
        }
        if let Some(threshold) = self.cookie_threshold {
            config.cookie_threshold = threshold;
        }
        if let Some(overlap) = self.rekey_overlap {
            config.rekey_overlap = seconds(overlap)?;
        }
        config.key_log = self.key_log.is_some();
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let psk = std::env::temp_dir().join(format!("dmvpn-interop-cli-{}", std::process::id()));
        std::fs::write(&psk, b"not a secret").unwrap();
        let mut argv = vec!["dmvpn-ike-peer", "--local", "198.18.0.1", "--psk-file"];
        let psk = psk.to_string_lossy().into_owned();
        argv.push(&psk);
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn defaults_are_the_dmvpn_shape() {
        let config = args(&[]).config().unwrap();
        assert_eq!(config.mode, dmvpn_ike::Mode::Transport);
        assert!(!config.key_log);
        assert_eq!(config.ike_proposals.len(), 1);
        assert_eq!(
            config.own_identity(),
            Identity::address("198.18.0.1".parse().unwrap())
        );
    }

    #[test]
    fn flags_reach_the_engine_config() {
        let config = args(&[
            "--ike-proposal",
            "aes128gcm16-prfsha256-ecp256",
            "--ike-proposal",
            "chacha20poly1305-prfsha256-x25519",
            "--mode",
            "tunnel",
            "--identity",
            "fqdn:spoke.example",
            "--dpd",
            "0",
            "--retransmit-timeout-ms",
            "250",
            "--retransmit-tries",
            "3",
            "--rekey-overlap",
            "0.5",
            "--cookie-threshold",
            "0",
            "--key-log",
            "/tmp/k.json",
        ])
        .config()
        .unwrap();
        assert_eq!(config.ike_proposals.len(), 2);
        assert_eq!(config.mode, dmvpn_ike::Mode::Tunnel);
        assert_eq!(config.own_identity(), Identity::fqdn("spoke.example"));
        assert_eq!(config.dpd_interval, None);
        assert_eq!(config.retransmit_timeout, Duration::from_millis(250));
        assert_eq!(config.retransmit_tries, 3);
        assert_eq!(config.rekey_overlap, Duration::from_millis(500));
        assert_eq!(config.cookie_threshold, 0);
        assert!(config.key_log);
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = args(&["--ike-proposal", "3des-md5-modp1024"])
            .config()
            .unwrap_err();
        assert!(e.to_string().to_lowercase().contains("3des"), "{e}");
        assert!(parse_identity("keyid:abc").is_err());
        assert!(parse_identity("no such thing").is_err());
        assert_eq!(
            parse_identity("keyid:0aff").unwrap(),
            Identity::key_id(&[0x0a, 0xff])
        );
        assert!(seconds(-1.0).is_err());
    }
}
