//! `dmvpn-agent run`: loads the configuration, opens the Linux TUN device, the underlay
//! socket and the routing table, serves the admin socket and `/metrics`, and drives the
//! router until SIGTERM or SIGINT, after which it purges its NHRP registrations, deletes its
//! IKE SAs, removes its routes and closes the device.

use core::net::SocketAddr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use dmvpn_crds::DmvpnNodeSpec;
use dmvpn_dataplane::os::linux::{
    DEFAULT_ROUTE_PROTOCOL, LinuxRoutes, LinuxTun, LinuxUdp, MAIN_TABLE,
};
use dmvpn_dataplane::{EspInUdp, Forwarder, GreInUdp, Protection};
use dmvpn_nhrp::{Engine, Random};
use dmvpn_wire::udp_encap::IKE_PORT;
use ring::rand::SystemRandom;

use crate::driver::{DeviceInfo, Driver, Os};
use crate::ipsec::{IkeKeys, IpsecError, IpsecSettings, KeyExchange, KeyLogFile, Unprotected};
use crate::metrics::{Metrics, MetricsServer};
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
            AgentError::Config(_) | AgentError::Settings { .. } => EXIT_CONFIG,
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

/// Loads and checks the configuration of `path`, reading the pre-shared key file or the
/// certificate, key and CA files of its `ipsec` section (`key_log`: the IKE engine keeps
/// the SA keys for the key log).
///
/// # Errors
/// [`AgentError::Config`] or [`AgentError::Settings`].
pub fn load(
    path: &Path,
    key_log: bool,
) -> Result<(DmvpnNodeSpec, Settings, Option<IpsecSettings>), AgentError> {
    let spec = DmvpnNodeSpec::load(path)?;
    let settings = Settings::from_spec(&spec).map_err(|error| AgentError::Settings {
        error,
        file: path.to_owned(),
    })?;
    let ipsec = spec
        .ipsec
        .as_ref()
        .map(|i| IpsecSettings::from_spec(i, settings.underlay, key_log))
        .transpose()
        .map_err(|e| match e {
            IpsecError::Key(e) => AgentError::Config(e),
            IpsecError::Engine(e) => AgentError::Settings {
                error: SettingsError::Ipsec(e),
                file: path.to_owned(),
            },
        })?;
    Ok((spec, settings, ipsec))
}

/// The NHRP engine's randomness (its request IDs, jitter and the key of its cache's hashes):
/// HMAC-SHA256 of a counter under a key from the OS's random source. The request IDs go on
/// the wire, so the draws must not give each other away, as a seeded generator's would: the
/// hash key would then be guessable and peers could aim their addresses at one bucket.
struct OsKeyedRandom {
    key: ring::hmac::Key,
    counter: u64,
}

impl OsKeyedRandom {
    /// Draws the key from the OS's random source.
    fn new() -> Result<Self, AgentError> {
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| AgentError::Os {
                what: "reading the OS random source".into(),
                source: io::Error::other("getrandom failed"),
            })?;
        Ok(OsKeyedRandom { key, counter: 0 })
    }
}

impl Random for OsKeyedRandom {
    fn next_u32(&mut self) -> u32 {
        self.counter = self.counter.wrapping_add(1);
        let tag = ring::hmac::sign(&self.key, &self.counter.to_be_bytes());
        // A SHA-256 tag is 32 bytes.
        tag.as_ref()
            .first_chunk::<4>()
            .map_or(0, |b| u32::from_be_bytes(*b))
    }
}

/// Runs the agent until SIGTERM or SIGINT.
///
/// # Errors
/// [`AgentError`]; see [`AgentError::exit_code`].
pub fn run(options: &RunOptions) -> Result<(), AgentError> {
    let (spec, settings, ipsec) = load(&options.config, options.key_log.is_some())?;
    match &ipsec {
        None => {
            tracing::warn!(
                "INSECURE: no ipsec section, GRE-in-UDP goes unencrypted and unauthenticated; \
                 for tests and labs only"
            );
            if let Some(path) = &options.key_log {
                tracing::info!(path = %path.display(), "no IPsec: the key log stays unwritten");
            }
        }
        Some(_) => {
            if spec.ipsec.as_ref().is_some_and(|i| !i.force_udp_encap) {
                tracing::info!(
                    "ESP travels in UDP 4500 (RFC 3948) whatever forceUdpEncap says: the \
                     userspace dataplane has no raw ESP socket"
                );
            }
            if let Some(path) = &options.key_log {
                tracing::warn!(path = %path.display(), "writing IKE and ESP keys to the key log (tests only)");
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(os("starting the runtime"))?;
    let ops = Operations {
        admin: spec.admin.socket.clone(),
        metrics: spec.metrics.listen,
    };
    runtime.block_on(serve(settings, ipsec, options.key_log.clone(), ops))
}

/// Where the agent serves its operators.
#[derive(Debug, Clone)]
struct Operations {
    /// The admin socket (`admin.socket`).
    admin: PathBuf,
    /// The `/metrics` listener (`metrics.listen`).
    metrics: SocketAddr,
}

async fn serve(
    settings: Settings,
    ipsec: Option<IpsecSettings>,
    key_log: Option<PathBuf>,
    ops: Operations,
) -> Result<(), AgentError> {
    let now = Instant::now();
    let handshakes = crate::metrics::handshake_histogram().map_err(|e| AgentError::Os {
        what: "creating the metrics".into(),
        source: io::Error::other(e.to_string()),
    })?;
    let tun = LinuxTun::create(
        &settings.interface,
        settings.tunnel_address,
        settings.tunnel_prefix_len,
        settings.mtu,
    )
    .map_err(os(format!("creating TUN device {}", settings.interface)))?;
    let ifindex = tun.if_index().map_err(os("reading the TUN ifindex"))?;
    let routes = LinuxRoutes::connect(DEFAULT_ROUTE_PROTOCOL, MAIN_TABLE)
        .map_err(os("opening rtnetlink"))?;
    let engine =
        Engine::new(settings.nhrp.clone(), Box::new(OsKeyedRandom::new()?), now).map_err(|e| {
            AgentError::Os {
                what: "starting NHRP".into(),
                source: io::Error::other(e.to_string()),
            }
        })?;
    let device = DeviceInfo {
        interface: settings.interface.clone(),
        ifindex,
        mtu: settings.mtu,
        insecure: settings.insecure,
    };
    let bind = |port: u16| {
        let local = SocketAddr::new(settings.underlay, port);
        LinuxUdp::bind(local).map_err(os(format!("binding UDP {local}")))
    };
    match ipsec {
        None => {
            let protection = GreInUdp::default();
            let udp = bind(protection.port())?;
            let fwd = forwarder(&settings, engine, protection)?;
            let driver = Driver::new(fwd, Unprotected, Os { tun, udp, routes }, device, now);
            drive(driver, &settings, ops, handshakes, now).await
        }
        Some(ipsec) => {
            let protection = EspInUdp::new(ipsec.mode, settings.underlay);
            let udp = bind(protection.port())?;
            let ike_socket = bind(IKE_PORT)?;
            let ike = dmvpn_ike::Engine::new(ipsec.ike, Box::new(dmvpn_ike::SystemRng::new()), now)
                .map_err(|e| AgentError::Os {
                    what: "starting IKE".into(),
                    source: io::Error::other(e.to_string()),
                })?;
            let keys = IkeKeys::new(ike, ike_socket, key_log.map(KeyLogFile::new))
                .with_handshake_histogram(handshakes.clone());
            let fwd = forwarder(&settings, engine, protection)?;
            let driver = Driver::new(fwd, keys, Os { tun, udp, routes }, device, now);
            drive(driver, &settings, ops, handshakes, now).await
        }
    }
}

fn forwarder<P: Protection>(
    settings: &Settings,
    engine: Engine,
    protection: P,
) -> Result<Forwarder<P>, AgentError> {
    Forwarder::new(settings.forwarder.clone(), engine, protection).map_err(|e| AgentError::Os {
        what: "starting the forwarder".into(),
        source: io::Error::other(e.to_string()),
    })
}

/// Starts the driver, serves the admin socket and `/metrics` beside it, and runs until
/// SIGTERM or SIGINT.
async fn drive<P, K>(
    mut driver: Driver<P, K, LinuxTun, LinuxUdp, LinuxRoutes>,
    settings: &Settings,
    ops: Operations,
    handshakes: prometheus::Histogram,
    now: Instant,
) -> Result<(), AgentError>
where
    P: Protection,
    K: KeyExchange<P>,
{
    let admin = ops.admin;
    driver.start(now).await.map_err(os("applying routes"))?;
    let (clears, clear_rx) = tokio::sync::mpsc::channel(4);
    let server = crate::admin::AdminServer::bind(&admin)
        .map_err(os(format!("binding the admin socket {}", admin.display())))?;
    let snapshots = driver.snapshot_channel();
    tokio::spawn(async move {
        if let Err(e) = server.run(snapshots, clears).await {
            tracing::error!(error = %e, "admin socket failed");
        }
    });
    let metrics =
        Metrics::new(driver.snapshot_channel(), handshakes).map_err(|e| AgentError::Os {
            what: "creating the metrics".into(),
            source: io::Error::other(e.to_string()),
        })?;
    let listener = MetricsServer::bind(ops.metrics)
        .await
        .map_err(os(format!("binding the metrics listener {}", ops.metrics)))?;
    tokio::spawn(async move {
        if let Err(e) = listener.run(Arc::new(metrics)).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    // TUN offloads: GSO super-packets read, writes coalesced (GRO); without them one
    // packet per system call.
    let tun_offload = driver.os_mut().tun.offload();
    tracing::info!(
        interface = %settings.interface,
        tun_offload,
        tunnel = %settings.tunnel_address,
        underlay = %settings.underlay,
        mtu = settings.mtu,
        role = ?settings.nhrp.role,
        ipsec = !settings.insecure,
        admin = %admin.display(),
        metrics = %ops.metrics,
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
    driver.run(shutdown, clear_rx).await.map_err(os("running"))
}

/// The Linux OS for `run --kube` ([`crate::kube::Platform`]): TUN devices, UDP sockets and
/// rtnetlink routes in the main table, and the gateway's admin socket and `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxPlatform;

impl crate::kube::Platform for LinuxPlatform {
    type Tun = LinuxTun;
    type Udp = LinuxUdp;
    type Routes = LinuxRoutes;

    fn tun(&mut self, settings: &Settings) -> io::Result<(LinuxTun, u32)> {
        let tun = LinuxTun::create(
            &settings.interface,
            settings.tunnel_address,
            settings.tunnel_prefix_len,
            settings.mtu,
        )?;
        let ifindex = tun.if_index()?;
        tracing::info!(interface = %settings.interface, tun_offload = tun.offload(), "TUN device up");
        Ok((tun, ifindex))
    }

    fn udp(&mut self, local: SocketAddr) -> io::Result<LinuxUdp> {
        LinuxUdp::bind(local)
    }

    fn routes(&mut self, protocol: u8) -> io::Result<LinuxRoutes> {
        LinuxRoutes::connect(protocol, MAIN_TABLE)
    }

    fn serve_operations(
        &mut self,
        spec: &DmvpnNodeSpec,
        snapshots: tokio::sync::watch::Receiver<Arc<crate::snapshot::RouterSnapshot>>,
        clears: tokio::sync::mpsc::Sender<crate::admin::AdminCommand>,
    ) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
        let server = crate::admin::AdminServer::bind(&spec.admin.socket)?;
        let admin_snapshots = snapshots.clone();
        let admin = tokio::spawn(async move {
            if let Err(e) = server.run(admin_snapshots, clears).await {
                tracing::error!(error = %e, "admin socket failed");
            }
        });
        let histogram = crate::metrics::handshake_histogram().map_err(io::Error::other)?;
        let metrics = Metrics::new(snapshots, histogram).map_err(io::Error::other)?;
        let listen = spec.metrics.listen;
        let metrics = tokio::spawn(async move {
            match MetricsServer::bind(listen).await {
                Ok(listener) => {
                    if let Err(e) = listener.run(Arc::new(metrics)).await {
                        tracing::error!(error = %e, "metrics listener failed");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, %listen, "binding the metrics listener failed")
                }
            }
        });
        Ok(vec![admin, metrics])
    }
}
