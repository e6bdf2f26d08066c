//! `dmvpn-agent run`: loads the configuration, opens the Linux TUN device, the underlay
//! socket and the routing table, and drives the router until SIGTERM or SIGINT, after which
//! it purges its NHRP registrations, removes its routes and closes the device.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dmvpn_crds::DmvpnNodeSpec;
use dmvpn_dataplane::os::linux::{
    DEFAULT_ROUTE_PROTOCOL, LinuxRoutes, LinuxTun, LinuxUdp, MAIN_TABLE,
};
use dmvpn_dataplane::{Forwarder, GreInUdp, Protection};
use dmvpn_nhrp::{Engine, SplitMix64};
use ring::rand::SecureRandom;

use crate::driver::{DeviceInfo, Driver, Os};
use crate::ipsec::Unprotected;
use crate::settings::{Settings, SettingsError};

/// The exit code of a configuration the agent refuses.
pub const EXIT_CONFIG: i32 = 2;
/// The exit code of an OS failure (device, socket, routes).
pub const EXIT_OS: i32 = 1;

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration file is unreadable or invalid (the message names the field path
    /// and the fix).
    #[error("{0}")]
    Config(#[from] dmvpn_crds::ConfigError),
    /// The configuration is valid but an engine refuses it.
    #[error("{}: {error}", file.display())]
    Settings {
        /// The engine's complaint.
        error: SettingsError,
        /// The configuration file.
        file: PathBuf,
    },
    /// The configuration asks for something this build cannot do.
    #[error("{}: {what}", file.display())]
    Unsupported {
        /// What, and what to do instead.
        what: &'static str,
        /// The configuration file.
        file: PathBuf,
    },
    /// An OS operation failed.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl AgentError {
    /// The process exit code: [`EXIT_CONFIG`] for configuration problems, [`EXIT_OS`]
    /// otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            AgentError::Config(_)
            | AgentError::Settings { .. }
            | AgentError::Unsupported { .. } => EXIT_CONFIG,
            AgentError::Os { .. } => EXIT_OS,
        }
    }
}

fn os(what: impl Into<String>) -> impl FnOnce(io::Error) -> AgentError {
    let what = what.into();
    move |source| AgentError::Os { what, source }
}

/// What `dmvpn-agent run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Where to write the IKE key log (for decrypting captures in tests).
    pub key_log: Option<PathBuf>,
}

/// Loads and checks the configuration of `path`.
///
/// # Errors
/// [`AgentError::Config`], [`AgentError::Settings`] or [`AgentError::Unsupported`].
pub fn load(path: &Path) -> Result<(DmvpnNodeSpec, Settings), AgentError> {
    let spec = DmvpnNodeSpec::load(path)?;
    if spec.ipsec.is_some() {
        return Err(AgentError::Unsupported {
            what: "ipsec: this build has no IKEv2 engine yet; remove the `ipsec` section to \
                   run GRE-in-UDP without protection (tests and labs only)",
            file: path.to_owned(),
        });
    }
    let settings = Settings::from_spec(&spec).map_err(|error| AgentError::Settings {
        error,
        file: path.to_owned(),
    })?;
    Ok((spec, settings))
}

/// A seed for the NHRP engine's request IDs and jitter, from the OS's random source.
fn seed() -> Result<u64, AgentError> {
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AgentError::Os {
            what: "reading the OS random source".into(),
            source: io::Error::other("getrandom failed"),
        })?;
    Ok(u64::from_le_bytes(bytes))
}

/// Runs the agent until SIGTERM or SIGINT.
///
/// # Errors
/// [`AgentError`]; see [`AgentError::exit_code`].
pub fn run(options: &RunOptions) -> Result<(), AgentError> {
    let (_spec, settings) = load(&options.config)?;
    if settings.insecure {
        tracing::warn!(
            "INSECURE: no ipsec section, GRE-in-UDP goes unencrypted and unauthenticated; \
             for tests and labs only"
        );
    }
    if let Some(path) = &options.key_log {
        tracing::info!(path = %path.display(), "no IPsec: the key log stays unwritten");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(os("starting the runtime"))?;
    runtime.block_on(serve(settings))
}

async fn serve(settings: Settings) -> Result<(), AgentError> {
    let now = Instant::now();
    let protection = GreInUdp::default();
    let tun = LinuxTun::create(
        &settings.interface,
        settings.tunnel_address,
        settings.tunnel_prefix_len,
        settings.mtu,
    )
    .map_err(os(format!("creating TUN device {}", settings.interface)))?;
    let ifindex = tun.if_index().map_err(os("reading the TUN ifindex"))?;
    let local = core::net::SocketAddr::new(settings.underlay, protection.port());
    let udp = LinuxUdp::bind(local).map_err(os(format!("binding UDP {local}")))?;
    let routes = LinuxRoutes::connect(DEFAULT_ROUTE_PROTOCOL, MAIN_TABLE)
        .map_err(os("opening rtnetlink"))?;
    let engine =
        Engine::new(settings.nhrp.clone(), Box::new(SplitMix64(seed()?)), now).map_err(|e| {
            AgentError::Os {
                what: "starting NHRP".into(),
                source: io::Error::other(e.to_string()),
            }
        })?;
    let fwd = Forwarder::new(settings.forwarder.clone(), engine, protection).map_err(|e| {
        AgentError::Os {
            what: "starting the forwarder".into(),
            source: io::Error::other(e.to_string()),
        }
    })?;
    let device = DeviceInfo {
        interface: settings.interface.clone(),
        ifindex,
        mtu: settings.mtu,
        insecure: settings.insecure,
    };
    let mut driver = Driver::new(fwd, Unprotected, Os { tun, udp, routes }, device, now);
    driver.start(now).await.map_err(os("applying routes"))?;
    tracing::info!(
        interface = %settings.interface,
        tunnel = %settings.tunnel_address,
        underlay = %local,
        mtu = settings.mtu,
        role = ?settings.nhrp.role,
        "started"
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(os("installing the SIGTERM handler"))?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
        }
    };
    driver.run(shutdown).await.map_err(os("running"))
}
