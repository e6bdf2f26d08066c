//! `dmvpn-agent run --kube`: the agent under Kubernetes (issue 6). One watch of every
//! `DmvpnNode` decides the mode:
//!
//! - **Gateway** ([`gateway`]): a DmvpnNode named `$NODE_NAME` exists. The router runs its
//!   spec (Secrets read from `$POD_NAMESPACE`, [`secrets`]) through the code of `run
//!   --config`; spec changes are planned ([`plan`]) and applied live when they can be, so
//!   unchanged peers keep their SAs and routes; the status ([`status`]) is written with
//!   server-side apply at most every 5 s and only when it changed. When the DmvpnNode goes
//!   (a failover moved it), the router stops cleanly and the agent becomes a route agent.
//! - **Route agent** ([`routes`]): every other node routes the active gateway's
//!   `status.remotePrefixes` and the tunnel subnet via the gateway's address.
//!
//! [`health`] serves `/healthz` and `/readyz`. The OS goes through [`Platform`]: Linux in
//! the daemon, the dataplane's fakes in tests.

pub mod gateway;
pub mod health;
pub mod plan;
pub mod routes;
pub mod secrets;
pub mod status;

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use dmvpn_crds::{DmvpnNode, DmvpnNodeSpec};
use dmvpn_dataplane::os::{RouteTable, TunDevice, UdpEndpoint, reconcile};
use futures_util::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::{mpsc, watch};

use crate::admin::AdminCommand;
use crate::settings::Settings;
use crate::snapshot::RouterSnapshot;
use health::Readiness;

/// The field manager of the agent's server-side apply patches.
pub const FIELD_MANAGER: &str = "dmvpn-agent";
/// The wait before retrying what failed (Secrets, OS devices, routes).
pub const RETRY: Duration = Duration::from_secs(10);

/// The OS as the agent under Kubernetes uses it: devices, sockets and routing tables for
/// the router, and routes for the route agent.
pub trait Platform {
    /// The tunnel device.
    type Tun: TunDevice + Send;
    /// An underlay UDP socket.
    type Udp: UdpEndpoint + Send;
    /// A routing table.
    type Routes: RouteTable + Send;

    /// Creates the tunnel device of `settings`; returns it and its interface index.
    ///
    /// # Errors
    /// The OS error.
    fn tun(&mut self, settings: &Settings) -> io::Result<(Self::Tun, u32)>;

    /// Binds a UDP socket to `local`.
    ///
    /// # Errors
    /// The OS error.
    fn udp(&mut self, local: SocketAddr) -> io::Result<Self::Udp>;

    /// The routing table for routes marked with `protocol`.
    ///
    /// # Errors
    /// The OS error.
    fn routes(&mut self, protocol: u8) -> io::Result<Self::Routes>;

    /// Serves a gateway's admin socket and `/metrics` (from `spec`) for the router's
    /// `snapshots`, sending `clear` commands to `clears`; the tasks are aborted when the
    /// router stops.
    ///
    /// # Errors
    /// The OS error of a listener.
    fn serve_operations(
        &mut self,
        spec: &DmvpnNodeSpec,
        snapshots: watch::Receiver<Arc<RouterSnapshot>>,
        clears: mpsc::Sender<AdminCommand>,
    ) -> io::Result<Vec<tokio::task::JoinHandle<()>>>;
}

/// Every DmvpnNode of the cluster, as the watch knows them.
#[derive(Debug, Clone, Default)]
pub struct NodeSet {
    /// By name.
    pub nodes: BTreeMap<String, DmvpnNode>,
    /// The initial list is done.
    pub listed: bool,
}

/// Where the agent runs.
#[derive(Debug, Clone)]
pub struct Identity {
    /// This node's name (`$NODE_NAME`): the name of its DmvpnNode, if it is a gateway.
    pub node: String,
    /// The agent's namespace (`$POD_NAMESPACE`), where the Secrets are.
    pub namespace: String,
}

/// Why `run --kube` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// An environment variable the downward API should set is missing.
    #[error(
        "{0} is not set: the DaemonSet sets it from the downward API (spec.nodeName, metadata.namespace)"
    )]
    Environment(&'static str),
    /// No Kubernetes client configuration (in-cluster or kubeconfig).
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
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

/// What `dmvpn-agent run --kube` was asked to do.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// The health listener (`--health-listen`).
    pub health_listen: Option<SocketAddr>,
    /// Where to write the IKE key log (tests only).
    pub key_log: Option<PathBuf>,
}

/// Watches every DmvpnNode and publishes the set to `tx` after each change; the watcher
/// retries with kube's default backoff after an API error.
pub async fn watch_nodes(api: Api<DmvpnNode>, tx: watch::Sender<Arc<NodeSet>>) {
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut set = NodeSet::default();
    let mut init: BTreeMap<String, DmvpnNode> = BTreeMap::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => init.clear(),
            Ok(watcher::Event::InitApply(n)) => {
                init.insert(n.name_any(), n);
            }
            Ok(watcher::Event::InitDone) => {
                set.nodes = core::mem::take(&mut init);
                set.listed = true;
                tx.send_replace(Arc::new(set.clone()));
            }
            Ok(watcher::Event::Apply(n)) => {
                set.nodes.insert(n.name_any(), n);
                tx.send_replace(Arc::new(set.clone()));
            }
            Ok(watcher::Event::Delete(n)) => {
                set.nodes.remove(&n.name_any());
                tx.send_replace(Arc::new(set.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "watching DmvpnNodes failed: retrying"),
        }
    }
}

/// How a mode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM (or the test's shutdown): stop.
    Shutdown,
    /// Look at the DmvpnNodes again: this node's DmvpnNode appeared, went, or its spec
    /// needs a restart of the router.
    Again,
}

/// Runs the agent on `client` until `shutdown` turns true: the DmvpnNode watch, then
/// gateway or route-agent mode as this node's DmvpnNode exists or not.
///
/// # Errors
/// [`KubeError`] when the watch task cannot start.
pub async fn run_with<Pl: Platform>(
    client: Client,
    me: Identity,
    mut platform: Pl,
    readiness: Arc<Readiness>,
    mut shutdown: watch::Receiver<bool>,
    key_log: Option<PathBuf>,
) -> Result<(), KubeError> {
    let (tx, mut nodes) = watch::channel(Arc::new(NodeSet::default()));
    let watch_task = tokio::spawn(watch_nodes(Api::all(client.clone()), tx));
    let mut writer = status::StatusWriter::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let set = Arc::clone(&nodes.borrow_and_update());
        let exit = match set.nodes.get(&me.node) {
            Some(own) if set.listed => {
                gateway::run(
                    &client,
                    &me,
                    &mut platform,
                    own.clone(),
                    &mut nodes,
                    &mut writer,
                    &readiness,
                    &mut shutdown,
                    key_log.as_deref(),
                )
                .await
            }
            _ => {
                writer.reset();
                route_agent(&me, &mut platform, &mut nodes, &readiness, &mut shutdown).await
            }
        };
        if exit == Exit::Shutdown {
            break;
        }
    }
    watch_task.abort();
    Ok(())
}

/// Route-agent mode: keeps the routes of [`routes::plan_routes`] until this node's
/// DmvpnNode appears or `shutdown`, then removes them.
async fn route_agent<Pl: Platform>(
    me: &Identity,
    platform: &mut Pl,
    nodes: &mut watch::Receiver<Arc<NodeSet>>,
    readiness: &Readiness,
    shutdown: &mut watch::Receiver<bool>,
) -> Exit {
    let mut table = loop {
        match platform.routes(routes::ROUTE_AGENT_PROTOCOL) {
            Ok(t) => break t,
            Err(e) => {
                tracing::error!(error = %e, "opening the routing table failed: retrying");
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.changed() => return Exit::Shutdown,
                }
            }
        }
    };
    tracing::info!(node = %me.node, "route agent");
    let mut retry: Option<tokio::time::Instant> = None;
    let exit = loop {
        let set = Arc::clone(&nodes.borrow_and_update());
        if set.listed && set.nodes.contains_key(&me.node) {
            break Exit::Again;
        }
        readiness.set(set.listed);
        if set.listed {
            let all: Vec<DmvpnNode> = set.nodes.values().cloned().collect();
            let desired = routes::plan_routes(&all);
            match reconcile(&mut table, &desired).await {
                Ok(done) => {
                    retry = None;
                    for r in &done.added {
                        tracing::info!(prefix = %r.prefix, via = ?r.via, "route added");
                    }
                    for r in &done.removed {
                        tracing::info!(prefix = %r.prefix, via = ?r.via, "route removed");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "applying the routes failed: retrying");
                    retry = Some(tokio::time::Instant::now() + RETRY);
                }
            }
        }
        let wait_retry = async {
            match retry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => core::future::pending().await,
            }
        };
        tokio::select! {
            r = nodes.changed() => if r.is_err() { break Exit::Shutdown },
            () = wait_retry => {}
            _ = shutdown.changed() => break Exit::Shutdown,
        }
    };
    readiness.set(false);
    if let Err(e) = reconcile(&mut table, &Default::default()).await {
        tracing::warn!(error = %e, "removing the route agent's routes failed");
    }
    exit
}

/// Runs `dmvpn-agent run --kube` on Linux until SIGTERM or SIGINT.
///
/// # Errors
/// [`KubeError`].
pub fn run(options: &KubeOptions) -> Result<(), KubeError> {
    let node = std::env::var("NODE_NAME").map_err(|_| KubeError::Environment("NODE_NAME"))?;
    let namespace =
        std::env::var("POD_NAMESPACE").map_err(|_| KubeError::Environment("POD_NAMESPACE"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| KubeError::Os {
            what: "starting the runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        let client = Client::try_default().await?;
        let readiness = Arc::new(Readiness::default());
        if let Some(listen) = options.health_listen {
            let server =
                health::HealthServer::bind(listen)
                    .await
                    .map_err(|source| KubeError::Os {
                        what: format!("binding the health listener {listen}"),
                        source,
                    })?;
            let r = Arc::clone(&readiness);
            tokio::spawn(async move {
                if let Err(e) = server.run(r).await {
                    tracing::error!(error = %e, "health listener failed");
                }
            });
        }
        let (stop, shutdown) = watch::channel(false);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|source| KubeError::Os {
                what: "installing the SIGTERM handler".into(),
                source,
            })?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
            }
            stop.send_replace(true);
        });
        tracing::info!(node = %node, namespace = %namespace, "running under Kubernetes");
        let me = Identity { node, namespace };
        run_with(
            client,
            me,
            crate::agent::LinuxPlatform,
            readiness,
            shutdown,
            options.key_log.clone(),
        )
        .await
    })
}
