//! Gateway mode: the router of this node's `DmvpnNode`, run through the code of `run
//! --config` ([`crate::driver::Driver`]), its spec changes applied live when [`plan`] allows
//! (NHRP configuration updates, RFC 2332 section 5.2.3 re-registrations; static routes) and
//! its status written from the router's snapshots ([`status`]).

use core::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dmvpn_crds::{DmvpnNode, DmvpnNodeSpec, DmvpnNodeStatus};
use dmvpn_dataplane::os::linux::DEFAULT_ROUTE_PROTOCOL;
use dmvpn_dataplane::{EspInUdp, Forwarder, GreInUdp, Protection};
use dmvpn_nhrp::{Engine, SplitMix64};
use dmvpn_wire::udp_encap::IKE_PORT;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::plan::{Plan, plan};
use super::secrets::{Resolved, resolve};
use super::status::{Health, StatusWriter, status_of};
use super::{Exit, FIELD_MANAGER, Identity, NodeSet, Platform, RETRY};
use crate::driver::{DeviceInfo, Driver, LiveUpdate, Os};
use crate::ipsec::{IkeKeys, IpsecSettings, KeyExchange, KeyLogFile, Unprotected};
use crate::settings::Settings;
use crate::snapshot::RouterSnapshot;

/// How often the status is considered for writing.
const STATUS_TICK: core::time::Duration = core::time::Duration::from_secs(1);

/// What the gateway loop shares with its parts.
struct Gateway<'a> {
    me: &'a Identity,
    nodes_api: Api<DmvpnNode>,
    secrets: Api<Secret>,
    writer: &'a mut StatusWriter,
    readiness: &'a super::health::Readiness,
}

impl Gateway<'_> {
    /// Writes `status` if due ([`StatusWriter::due`]); a failure is logged and retried
    /// after its backoff. True when the last write succeeded.
    async fn write_status(&mut self, status: DmvpnNodeStatus) -> bool {
        // Tokio's clock, which tests pause and advance.
        let now = tokio::time::Instant::now().into_std();
        let Some(status) = self.writer.due(status, now) else {
            return true;
        };
        let body = serde_json::json!({
            "apiVersion": "dmvpn.io/v1alpha1",
            "kind": "DmvpnNode",
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match self
            .nodes_api
            .patch_status(&self.me.node, &params, &Patch::Apply(&body))
            .await
        {
            Ok(_) => {
                self.writer.written(status, now);
                true
            }
            Err(e) => {
                let wait = self.writer.failed(now);
                tracing::warn!(error = %e, retry_in = ?wait, "writing the DmvpnNode status failed");
                false
            }
        }
    }
}

/// The wall-clock time for status timestamps.
fn wall_now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now())
}

/// Runs this node's DmvpnNode `own` until it goes, its spec needs a restart, or `shutdown`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run<Pl: Platform>(
    client: &Client,
    me: &Identity,
    platform: &mut Pl,
    own: DmvpnNode,
    nodes: &mut watch::Receiver<Arc<NodeSet>>,
    writer: &mut StatusWriter,
    readiness: &super::health::Readiness,
    shutdown: &mut watch::Receiver<bool>,
    key_log: Option<&Path>,
) -> Exit {
    let mut gw = Gateway {
        me,
        nodes_api: Api::all(client.clone()),
        secrets: Api::namespaced(client.clone(), &me.namespace),
        writer,
        readiness,
    };
    readiness.set(false);
    tracing::info!(node = %me.node, generation = ?own.metadata.generation, "gateway: starting the router of the DmvpnNode");
    let spec = own.spec.clone();
    match prepare(&gw.secrets, &me.namespace, &own.spec, key_log.is_some()).await {
        Ok((resolved, settings, ipsec)) => {
            match start(
                platform, &mut gw, own, resolved, settings, ipsec, nodes, shutdown, key_log,
            )
            .await
            {
                Ok(exit) => exit,
                Err(health) => failed(&mut gw, health, &spec, nodes, shutdown).await,
            }
        }
        Err(health) => failed(&mut gw, health, &spec, nodes, shutdown).await,
    }
}

/// Reads the Secrets and builds the settings of `spec`.
async fn prepare(
    secrets: &Api<Secret>,
    namespace: &str,
    spec: &DmvpnNodeSpec,
    key_log: bool,
) -> Result<(Resolved, Settings, Option<IpsecSettings>), Health> {
    let resolved = resolve(secrets, namespace, spec)
        .await
        .map_err(|e| Health::Failed {
            reason: e.reason(),
            message: e.to_string(),
        })?;
    let invalid = |message: String| Health::Failed {
        reason: "InvalidSpec",
        message,
    };
    resolved
        .spec
        .validate()
        .map_err(|e| invalid(e.to_string()))?;
    let settings = Settings::from_spec(&resolved.spec).map_err(|e| invalid(e.to_string()))?;
    let ipsec = resolved
        .spec
        .ipsec
        .as_ref()
        .map(|i| {
            IpsecSettings::from_spec_with(i, settings.underlay, key_log, resolved.material.as_ref())
        })
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    Ok((resolved, settings, ipsec))
}

/// Reports `health` in the status until the DmvpnNode's `spec` changes or it goes,
/// [`RETRY`] passes (the Secret may have appeared), or `shutdown`.
async fn failed(
    gw: &mut Gateway<'_>,
    health: Health,
    spec: &DmvpnNodeSpec,
    nodes: &mut watch::Receiver<Arc<NodeSet>>,
    shutdown: &mut watch::Receiver<bool>,
) -> Exit {
    if let Health::Failed { reason, message } = &health {
        tracing::error!(reason, message = %message, "the gateway cannot run its DmvpnNode");
    }
    gw.readiness.set(false);
    let retry = tokio::time::Instant::now() + RETRY;
    let mut tick = tokio::time::interval(STATUS_TICK);
    loop {
        let own = nodes.borrow().nodes.get(&gw.me.node).cloned();
        let Some(own) = own else {
            return Exit::Again;
        };
        if own.spec != *spec {
            return Exit::Again;
        }
        let status = status_of(None, &health, own.metadata.generation, &wall_now());
        gw.write_status(status).await;
        tokio::select! {
            r = nodes.changed() => if r.is_err() { return Exit::Shutdown },
            () = tokio::time::sleep_until(retry) => return Exit::Again,
            _ = tick.tick() => {}
            _ = shutdown.changed() => return Exit::Shutdown,
        }
    }
}

/// Opens the OS handles and runs the router of `settings` (unprotected or with IKE).
#[allow(clippy::too_many_arguments)]
async fn start<Pl: Platform>(
    platform: &mut Pl,
    gw: &mut Gateway<'_>,
    own: DmvpnNode,
    resolved: Resolved,
    settings: Settings,
    ipsec: Option<IpsecSettings>,
    nodes: &mut watch::Receiver<Arc<NodeSet>>,
    shutdown: &mut watch::Receiver<bool>,
    key_log: Option<&Path>,
) -> Result<Exit, Health> {
    let os_failed = |what: &str, e: std::io::Error| Health::Failed {
        reason: "OsError",
        message: format!("{what}: {e}"),
    };
    let now = Instant::now();
    let (tun, ifindex) = platform
        .tun(&settings)
        .map_err(|e| os_failed(&format!("creating TUN device {}", settings.interface), e))?;
    let routes = platform
        .routes(DEFAULT_ROUTE_PROTOCOL)
        .map_err(|e| os_failed("opening the routing table", e))?;
    let mut seed = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).map_err(|_| {
        os_failed(
            "reading the OS random source",
            std::io::Error::other("getrandom failed"),
        )
    })?;
    let engine = Engine::new(
        settings.nhrp.clone(),
        Box::new(SplitMix64(u64::from_le_bytes(seed))),
        now,
    )
    .map_err(|e| os_failed("starting NHRP", std::io::Error::other(e.to_string())))?;
    let device = DeviceInfo {
        interface: settings.interface.clone(),
        ifindex,
        mtu: settings.mtu,
        insecure: settings.insecure,
    };
    let mut bind = |port: u16| {
        let local = SocketAddr::new(settings.underlay, port);
        platform
            .udp(local)
            .map_err(|e| os_failed(&format!("binding UDP {local}"), e))
    };
    match ipsec {
        None => {
            let protection = GreInUdp::default();
            let udp = bind(protection.port())?;
            let fwd = forwarder(&settings, engine, protection)?;
            let driver = Driver::new(fwd, Unprotected, Os { tun, udp, routes }, device, now);
            drive(platform, gw, own, resolved.spec, driver, nodes, shutdown).await
        }
        Some(ipsec) => {
            let protection = EspInUdp::new(ipsec.mode, settings.underlay);
            let udp = bind(protection.port())?;
            let ike_socket = bind(IKE_PORT)?;
            let ike = dmvpn_ike::Engine::new(ipsec.ike, Box::new(dmvpn_ike::SystemRng::new()), now)
                .map_err(|e| os_failed("starting IKE", std::io::Error::other(e.to_string())))?;
            let keys = IkeKeys::new(
                ike,
                ike_socket,
                key_log.map(|p| KeyLogFile::new(p.to_owned())),
            );
            let fwd = forwarder(&settings, engine, protection)?;
            let driver = Driver::new(fwd, keys, Os { tun, udp, routes }, device, now);
            drive(platform, gw, own, resolved.spec, driver, nodes, shutdown).await
        }
    }
}

fn forwarder<P: Protection>(
    settings: &Settings,
    engine: Engine,
    protection: P,
) -> Result<Forwarder<P>, Health> {
    Forwarder::new(settings.forwarder.clone(), engine, protection).map_err(|e| Health::Failed {
        reason: "OsError",
        message: format!("starting the forwarder: {e}"),
    })
}

/// Runs `driver` beside the control loop; stops it cleanly (purges, DELETEs, routes
/// removed, TUN closed) when the control loop ends.
async fn drive<Pl, P, K>(
    platform: &mut Pl,
    gw: &mut Gateway<'_>,
    own: DmvpnNode,
    running: DmvpnNodeSpec,
    mut driver: Driver<P, K, Pl::Tun, Pl::Udp, Pl::Routes>,
    nodes: &mut watch::Receiver<Arc<NodeSet>>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Exit, Health>
where
    Pl: Platform,
    P: Protection,
    K: KeyExchange<P>,
{
    driver
        .start(Instant::now())
        .await
        .map_err(|e| Health::Failed {
            reason: "OsError",
            message: format!("applying routes: {e}"),
        })?;
    let (clears, clear_rx) = mpsc::channel(4);
    let tasks = platform
        .serve_operations(&running, driver.snapshot_channel(), clears)
        .map_err(|e| Health::Failed {
            reason: "OsError",
            message: format!("serving the admin socket or metrics: {e}"),
        })?;
    let snapshots = driver.snapshot_channel();
    let (updates, update_rx) = mpsc::channel(4);
    let (stop, stopped) = oneshot::channel::<()>();
    let (done_tx, mut done_rx) = oneshot::channel::<()>();
    let router = async {
        let r = driver
            .run_with_updates(
                async {
                    let _ = stopped.await;
                },
                clear_rx,
                update_rx,
            )
            .await;
        let _ = done_tx.send(());
        r
    };
    let control = async {
        let exit = control(
            gw,
            own,
            running,
            snapshots,
            updates,
            nodes,
            shutdown,
            &mut done_rx,
        )
        .await;
        let _ = stop.send(());
        exit
    };
    let (result, exit) = tokio::join!(router, control);
    for t in tasks {
        t.abort();
    }
    gw.readiness.set(false);
    match result {
        Ok(()) => tracing::info!("gateway: router stopped"),
        Err(e) => tracing::error!(error = %e, "gateway: router failed"),
    }
    Ok(exit)
}

/// The control loop of a running router: status writes, spec changes, deletion.
#[allow(clippy::too_many_arguments)]
async fn control(
    gw: &mut Gateway<'_>,
    own: DmvpnNode,
    mut running: DmvpnNodeSpec,
    snapshots: watch::Receiver<Arc<RouterSnapshot>>,
    updates: mpsc::Sender<LiveUpdate>,
    nodes: &mut watch::Receiver<Arc<NodeSet>>,
    shutdown: &mut watch::Receiver<bool>,
    router_done: &mut oneshot::Receiver<()>,
) -> Exit {
    let mut generation = own.metadata.generation;
    let mut uid = own.uid();
    let mut tick = tokio::time::interval(STATUS_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let snapshot = Arc::clone(&snapshots.borrow());
                let status = status_of(Some(&snapshot), &Health::Running, generation, &wall_now());
                let ok = gw.write_status(status).await;
                gw.readiness.set(ok);
            }
            r = nodes.changed() => {
                if r.is_err() {
                    return Exit::Shutdown;
                }
                let Some(new) = nodes.borrow_and_update().nodes.get(&gw.me.node).cloned() else {
                    tracing::info!("gateway: the DmvpnNode was deleted; stopping the router");
                    return Exit::Again;
                };
                if new.uid() != uid {
                    // Deleted and created again while the watch was away.
                    gw.writer.reset();
                    uid = new.uid();
                }
                match plan(&running, &new.spec) {
                    Plan::Unchanged => generation = new.metadata.generation,
                    Plan::Restart(fields) => {
                        tracing::info!(fields = ?fields, "gateway: the spec change needs a restart of the router");
                        return Exit::Again;
                    }
                    Plan::Live { nhrp, static_routes } => {
                        tracing::info!(nhrp, static_routes, "gateway: applying the spec change live");
                        let settings = match resolve(&gw.secrets, &gw.me.namespace, &new.spec).await {
                            Ok(r) => Settings::from_spec(&r.spec).map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        match settings {
                            Ok(s) => {
                                let update = LiveUpdate {
                                    nhrp: s.nhrp,
                                    static_routes: s.forwarder.static_routes,
                                };
                                if updates.send(update).await.is_err() {
                                    return Exit::Again;
                                }
                                running = new.spec.clone();
                                generation = new.metadata.generation;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "gateway: the new spec cannot be applied; restarting");
                                return Exit::Again;
                            }
                        }
                    }
                }
            }
            _ = &mut *router_done => {
                tracing::error!("gateway: the router stopped on its own; starting again");
                return Exit::Again;
            }
            _ = shutdown.changed() => return Exit::Shutdown,
        }
    }
}
