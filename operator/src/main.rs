//! `dmvpn-operator`: reconciles DmvpnHub and DmvpnSpoke into DmvpnNodes while it holds the
//! Lease `kube-dmvpn-operator` in `$POD_NAMESPACE`; serves `/metrics`, `/healthz` and
//! `/readyz` on `--listen`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser;
use dmvpn_crds::{DmvpnHub, DmvpnNode, DmvpnSpoke};
use dmvpn_operator::controller::{self, Context};
use dmvpn_operator::{http, lease, metrics::Metrics};
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::api::networking::v1::ServiceCIDR;
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

/// The Lease the replicas elect a leader through.
const LEASE_NAME: &str = "kube-dmvpn-operator";

/// The kube-dmvpn operator.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address and port of the /metrics, /healthz and /readyz listener.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// The agents' metrics listener, rendered into each DmvpnNode's spec.metrics.listen.
    #[arg(long, default_value = "0.0.0.0:9469")]
    agent_metrics_listen: SocketAddr,
    /// Logs as JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The same variable as the agent's (the chart sets it from operator.logLevel).
    let filter = tracing_subscriber::EnvFilter::try_from_env("DMVPN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "kube-dmvpn".to_owned());
    let me = std::env::var("POD_NAME").context("POD_NAME is not set (downward API)")?;
    let client = Client::try_default()
        .await
        .context("no Kubernetes client configuration")?;
    let metrics = Metrics::new()?;
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tokio::spawn(http::serve(listener, metrics.clone(), ready.clone()));
    // A standby replica is ready too: it serves probes and waits for the Lease.
    ready.store(true, Ordering::Relaxed);

    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    while !lease::try_hold(&leases, LEASE_NAME, &me).await? {
        tokio::time::sleep(lease::RENEW_EVERY).await;
    }
    tracing::info!(%me, "leading");
    let renew = tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease::RENEW_EVERY).await;
            match lease::try_hold(&leases, LEASE_NAME, &me).await {
                Ok(true) => {}
                Ok(false) => return anyhow::anyhow!("lost the Lease {LEASE_NAME}"),
                Err(e) => return anyhow::anyhow!("renewing the Lease {LEASE_NAME}: {e}"),
            }
        }
    });

    let config = watcher::Config::default().any_semantic();
    let (nodes, nodes_writer) = reflector::store::<Node>();
    let (secrets, secrets_writer) = reflector::store::<Secret>();
    let (dmvpn_nodes, dmvpn_nodes_writer) = reflector::store::<DmvpnNode>();
    tokio::spawn(
        watcher(Api::<Node>::all(client.clone()), config.clone())
            .reflect(nodes_writer)
            .for_each(|_| async {}),
    );
    tokio::spawn(
        watcher(
            Api::<Secret>::namespaced(client.clone(), &namespace),
            config.clone(),
        )
        .reflect(secrets_writer)
        .for_each(|_| async {}),
    );
    tokio::spawn(
        watcher(Api::<DmvpnNode>::all(client.clone()), config.clone())
            .reflect(dmvpn_nodes_writer)
            .for_each(|_| async {}),
    );
    // ServiceCIDRs are optional: without RBAC for them (or before Kubernetes 1.33) the watch
    // retries with backoff and the store stays empty, so nobody waits for it.
    let (service_cidrs, service_cidrs_writer) = reflector::store::<ServiceCIDR>();
    tokio::spawn(
        watcher(Api::<ServiceCIDR>::all(client.clone()), config.clone())
            .default_backoff()
            .reflect(service_cidrs_writer)
            .for_each(|_| async {}),
    );
    let hubs_controller = Controller::new(Api::<DmvpnHub>::all(client.clone()), config.clone());
    let spokes_controller = Controller::new(Api::<DmvpnSpoke>::all(client.clone()), config.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        namespace: namespace.clone(),
        nodes: nodes.clone(),
        secrets: secrets.clone(),
        hubs: hubs_controller.store(),
        spokes: spokes_controller.store(),
        dmvpn_nodes: dmvpn_nodes.clone(),
        service_cidrs,
        metrics,
        reporter: Reporter {
            controller: "dmvpn-operator".to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        },
        agent_metrics_listen: args.agent_metrics_listen,
    });
    for (what, store) in [
        ("nodes", nodes.wait_until_ready().await),
        ("secrets", secrets.wait_until_ready().await),
        ("dmvpnnodes", dmvpn_nodes.wait_until_ready().await),
    ] {
        store.with_context(|| format!("the {what} cache"))?;
    }
    let all_hubs = {
        let store = ctx.hubs.clone();
        move || {
            store
                .state()
                .iter()
                .map(|h| ObjectRef::from_obj(&**h))
                .collect::<Vec<_>>()
        }
    };
    let all_spokes = {
        let store = ctx.spokes.clone();
        move || {
            store
                .state()
                .iter()
                .map(|s| ObjectRef::from_obj(&**s))
                .collect::<Vec<_>>()
        }
    };
    let (h1, h2, s1, s2) = (all_hubs.clone(), all_hubs, all_spokes.clone(), all_spokes);
    let hubs = hubs_controller
        .owns(Api::<DmvpnNode>::all(client.clone()), config.clone())
        .watches(
            Api::<Node>::all(client.clone()),
            config.clone(),
            move |_: Node| h1(),
        )
        .watches(
            Api::<Secret>::namespaced(client.clone(), &namespace),
            config.clone(),
            move |_: Secret| h2(),
        )
        .shutdown_on_signal()
        .run(
            controller::reconcile::<DmvpnHub>,
            controller::error_policy::<DmvpnHub>,
            ctx.clone(),
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "hub reconcile");
            }
        });
    let spokes = spokes_controller
        .owns(Api::<DmvpnNode>::all(client.clone()), config.clone())
        .watches(
            Api::<Node>::all(client.clone()),
            config.clone(),
            move |_: Node| s1(),
        )
        .watches(
            Api::<Secret>::namespaced(client.clone(), &namespace),
            config,
            move |_: Secret| s2(),
        )
        .shutdown_on_signal()
        .run(
            controller::reconcile::<DmvpnSpoke>,
            controller::error_policy::<DmvpnSpoke>,
            ctx.clone(),
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "spoke reconcile");
            }
        });
    tokio::select! {
        () = async { tokio::join!(hubs, spokes); } => Ok(()),
        lost = renew => {
            // Another replica may lead now: stop at once rather than reconcile alongside it.
            let e = lost.map_err(anyhow::Error::from)?;
            tracing::error!(error = %e, "stepping down");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let a = Args::try_parse_from(["dmvpn-operator", "--listen", "127.0.0.1:9090"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.listen.port(), 9090);
        assert_eq!(a.agent_metrics_listen.port(), 9469);
        assert!(Args::try_parse_from(["dmvpn-operator", "--listen", "nope"]).is_err());
    }
}
