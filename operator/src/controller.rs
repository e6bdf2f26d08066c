//! The reconcilers of DmvpnHub and DmvpnSpoke, shaped like kube-rs's controller-rs: one
//! `reconcile` and `error_policy` for both kinds through [`Site`], the cluster's state read
//! from reflector stores, the [`plan`](crate::plan) applied with server-side apply, Conditions
//! and Events telling the user what is wrong, and a finalizer that removes the DmvpnNodes.

use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmvpn_crds::{
    DmvpnHub, DmvpnNode, DmvpnSpoke, HubRef, PskSecretRef, Role, SiteSpec, SiteStatus,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::networking::v1::ServiceCIDR;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::metrics::Metrics;
use crate::plan::{self, NodeView, Plan, SiteInput};

/// The finalizer that removes a site's DmvpnNodes before the site goes.
pub const FINALIZER: &str = "dmvpn.io/dmvpnnodes";
/// The field manager of the operator's server-side applies.
pub const MANAGER: &str = "dmvpn-operator";
/// The label naming a DmvpnNode's site.
pub const SITE_LABEL: &str = "dmvpn.io/site";
/// The label giving a DmvpnNode's role.
pub const ROLE_LABEL: &str = "dmvpn.io/role";
/// The annotation giving the gateway node's InternalIP, for route agents.
pub const GATEWAY_ADDRESS_ANNOTATION: &str = "dmvpn.io/gateway-address";
/// The length of a generated pre-shared key in bytes.
pub const GENERATED_PSK_LEN: usize = 32;

/// Errors of a reconcile: each has a metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
    /// The system RNG failed while generating a pre-shared key.
    #[error("the system random number generator failed")]
    Random,
}

impl Error {
    /// The `reason` label of `dmvpn_operator_reconcile_failures_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(_) => "api",
            Error::Finalizer(_) => "finalizer",
            Error::Random => "random",
        }
    }
}

/// What the reconcilers share.
#[derive(Clone)]
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The operator's namespace, where Secrets live.
    pub namespace: String,
    /// Every Node.
    pub nodes: Store<Node>,
    /// The Secrets of the operator's namespace.
    pub secrets: Store<Secret>,
    /// Every DmvpnHub.
    pub hubs: Store<DmvpnHub>,
    /// Every DmvpnSpoke.
    pub spokes: Store<DmvpnSpoke>,
    /// Every DmvpnNode.
    pub dmvpn_nodes: Store<DmvpnNode>,
    /// The cluster's ServiceCIDRs (networking.k8s.io/v1, Kubernetes 1.33); empty where the
    /// operator may not list them.
    pub service_cidrs: Store<ServiceCIDR>,
    /// The metrics.
    pub metrics: Metrics,
    /// Who publishes the events.
    pub reporter: Reporter,
    /// The agents' metrics listener, rendered into `spec.metrics.listen`.
    pub agent_metrics_listen: SocketAddr,
}

impl core::fmt::Debug for Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// A DmvpnHub or DmvpnSpoke.
pub trait Site:
    Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + core::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The role of the site's router.
    const ROLE: Role;
    /// The shared spec.
    fn site(&self) -> &SiteSpec;
    /// The hubs it registers with.
    fn hub_refs(&self) -> &[HubRef];
    /// The status the operator wrote.
    fn site_status(&self) -> Option<&SiteStatus>;
}

impl Site for DmvpnHub {
    const ROLE: Role = Role::Hub;
    fn site(&self) -> &SiteSpec {
        &self.spec.site
    }
    fn hub_refs(&self) -> &[HubRef] {
        &self.spec.hubs
    }
    fn site_status(&self) -> Option<&SiteStatus> {
        self.status.as_ref()
    }
}

impl Site for DmvpnSpoke {
    const ROLE: Role = Role::Spoke;
    fn site(&self) -> &SiteSpec {
        &self.spec.site
    }
    fn hub_refs(&self) -> &[HubRef] {
        &self.spec.hubs
    }
    fn site_status(&self) -> Option<&SiteStatus> {
        self.status.as_ref()
    }
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Hub => "hub",
        Role::Spoke => "spoke",
    }
}

/// Reconciles one site; the controller calls it on every change of the site, its
/// DmvpnNodes, Nodes and Secrets.
///
/// # Errors
/// [`Error`] when an API call fails; problems of the site itself are Conditions and Events.
pub async fn reconcile<S: Site>(obj: Arc<S>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let kind = S::kind(&());
    ctx.metrics
        .reconciles
        .with_label_values(&[kind.as_ref()])
        .inc();
    let api: Api<S> = Api::all(ctx.client.clone());
    let c = ctx.clone();
    let result = finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            finalizer::Event::Apply(site) => apply(site, &c).await,
            finalizer::Event::Cleanup(site) => cleanup(site, &c).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        e => Error::Finalizer(Box::new(e)),
    });
    ctx.metrics
        .duration
        .with_label_values(&[kind.as_ref()])
        .observe(started.elapsed().as_secs_f64());
    result
}

/// Counts a failed reconcile and retries it later.
pub fn error_policy<S: Site>(obj: Arc<S>, error: &Error, ctx: Arc<Context>) -> Action {
    let kind = S::kind(&());
    tracing::warn!(%kind, name = %obj.name_any(), %error, "reconcile failed");
    ctx.metrics
        .failures
        .with_label_values(&[kind.as_ref(), error.metric_label()])
        .inc();
    Action::requeue(Duration::from_secs(15))
}

async fn apply<S: Site>(site: Arc<S>, ctx: &Context) -> Result<Action, Error> {
    let name = site.name_any();
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = site.object_ref(&());
    let mut secrets = secret_keys(&ctx.secrets);
    if let Some(psk) = site
        .site()
        .ipsec
        .as_ref()
        .and_then(|i| i.pre_shared_key_secret_ref.as_ref())
        .filter(|r| r.generate && !secrets.contains_key(&r.name))
    {
        generate_psk(ctx, psk, &*site).await?;
        secrets.insert(psk.name.clone(), BTreeSet::from([psk.key.clone()]));
        publish(&recorder, &reference, EventType::Normal, "PreSharedKeyGenerated",
            format!("created Secret {}/{} with a random {GENERATED_PSK_LEN}-byte key: copy it to the other sites' clusters", ctx.namespace, psk.name)).await;
    }
    let nodes: Vec<NodeView> = ctx
        .nodes
        .state()
        .iter()
        .map(|n| NodeView::from_node(n))
        .collect();
    let others = other_sites(ctx, S::kind(&()).as_ref(), &name);
    let resolved = resolve_hosts(site.hub_refs()).await;
    let service = match &site.site().gateway.nbma_address.service {
        Some(s) => {
            Api::<Service>::namespaced(ctx.client.clone(), &s.namespace)
                .get_opt(&s.name)
                .await?
        }
        None => None,
    };
    let service_cidrs: Vec<ipnet::IpNet> = ctx
        .service_cidrs
        .state()
        .iter()
        .filter_map(|c| c.spec.as_ref()?.cidrs.clone())
        .flatten()
        .filter_map(|c| c.parse().ok())
        .collect();
    let status = site.site_status();
    let input = SiteInput {
        role: S::ROLE,
        site: site.site(),
        hubs: site.hub_refs(),
        current_node: status.and_then(|s| s.active_node.as_deref()),
        current_tunnel: status.and_then(|s| s.tunnel_address),
        nodes: &nodes,
        service: service.as_ref(),
        service_cidrs: &service_cidrs,
        other_sites: &others,
        secrets: &secrets,
        namespace: &ctx.namespace,
        resolved: &resolved,
        metrics_listen: ctx.agent_metrics_listen,
    };
    match plan::plan(&input) {
        Ok(p) => {
            let previous = status.and_then(|s| s.active_node.clone());
            apply_plan(ctx, &*site, &p).await?;
            if let Some(prev) = previous.filter(|prev| *prev != p.node) {
                publish(
                    &recorder,
                    &reference,
                    EventType::Normal,
                    "Failover",
                    format!("the gateway moved from node {prev} to {}", p.node),
                )
                .await;
            }
            let agent_ready = ctx.dmvpn_nodes.state().iter().any(|n| {
                n.name_any() == p.node
                    && n.labels().get(SITE_LABEL) == Some(&name)
                    && n.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
            });
            let ready = if agent_ready {
                cond(
                    "Ready",
                    true,
                    "AgentReady",
                    format!("the agent on node {} runs the tunnel", p.node),
                )
            } else {
                cond(
                    "Ready",
                    false,
                    "AgentPending",
                    format!("DmvpnNode {} is rendered; waiting for its agent", p.node),
                )
            };
            let degraded = cond(
                "Degraded",
                false,
                "AsExpected",
                "no problem found".to_owned(),
            );
            let new_status = SiteStatus {
                observed_generation: site.meta().generation,
                conditions: merge_conditions(status, vec![ready, degraded]),
                active_node: Some(p.node.clone()),
                tunnel_address: Some(p.tunnel),
                nbma_address: Some(p.addresses.nbma),
            };
            patch_status(ctx, &*site, new_status).await?;
            Ok(Action::requeue(Duration::from_secs(300)))
        }
        Err(problem) => {
            ctx.metrics
                .problems
                .with_label_values(&[S::kind(&()).as_ref(), problem.reason()])
                .inc();
            publish(
                &recorder,
                &reference,
                EventType::Warning,
                problem.reason(),
                problem.to_string(),
            )
            .await;
            let ready = cond("Ready", false, problem.reason(), problem.to_string());
            let degraded = cond("Degraded", true, problem.reason(), problem.to_string());
            let mut new_status = status.cloned().unwrap_or_default();
            new_status.observed_generation = site.meta().generation;
            new_status.conditions = merge_conditions(status, vec![ready, degraded]);
            patch_status(ctx, &*site, new_status).await?;
            Ok(Action::requeue(Duration::from_secs(60)))
        }
    }
}

async fn cleanup<S: Site>(site: Arc<S>, ctx: &Context) -> Result<Action, Error> {
    let name = site.name_any();
    let api: Api<DmvpnNode> = Api::all(ctx.client.clone());
    for node in owned_nodes(ctx, S::ROLE, &name) {
        delete_node(&api, &node).await?;
    }
    Ok(Action::await_change())
}

/// The DmvpnNodes labelled as this site's.
fn owned_nodes(ctx: &Context, role: Role, site: &str) -> Vec<String> {
    let mut names: Vec<String> = ctx
        .dmvpn_nodes
        .state()
        .iter()
        .filter(|n| {
            n.labels().get(SITE_LABEL).map(String::as_str) == Some(site)
                && n.labels().get(ROLE_LABEL).map(String::as_str) == Some(role_label(role))
        })
        .map(|n| n.name_any())
        .collect();
    names.sort();
    names
}

async fn delete_node(api: &Api<DmvpnNode>, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn apply_plan<S: Site>(ctx: &Context, site: &S, p: &Plan) -> Result<(), Error> {
    let name = site.name_any();
    let api: Api<DmvpnNode> = Api::all(ctx.client.clone());
    // On failover the old node's DmvpnNode goes first: one gateway per site.
    for old in owned_nodes(ctx, S::ROLE, &name) {
        if old != p.node {
            delete_node(&api, &old).await?;
        }
    }
    let owner = OwnerReference {
        api_version: S::api_version(&()).into_owned(),
        kind: S::kind(&()).into_owned(),
        name: name.clone(),
        uid: site.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let mut annotations = BTreeMap::new();
    if let Some(a) = p.gateway_address {
        annotations.insert(GATEWAY_ADDRESS_ANNOTATION.to_owned(), a.to_string());
    }
    let node = DmvpnNode {
        metadata: ObjectMeta {
            name: Some(p.node.clone()),
            labels: Some(BTreeMap::from([
                (SITE_LABEL.to_owned(), name),
                (ROLE_LABEL.to_owned(), role_label(S::ROLE).to_owned()),
            ])),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: p.spec.clone(),
        status: None,
    };
    let mut body = serde_json::to_value(&node).map_err(kube::Error::SerdeError)?;
    body["apiVersion"] = json!(DmvpnNode::api_version(&()));
    body["kind"] = json!(DmvpnNode::kind(&()));
    api.patch(
        &p.node,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(())
}

async fn patch_status<S: Site>(ctx: &Context, site: &S, status: SiteStatus) -> Result<(), Error> {
    let api: Api<S> = Api::all(ctx.client.clone());
    let body = json!({
        "apiVersion": S::api_version(&()),
        "kind": S::kind(&()),
        "status": status,
    });
    api.patch_status(
        &site.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(())
}

async fn generate_psk<S: Site>(ctx: &Context, psk: &PskSecretRef, site: &S) -> Result<(), Error> {
    use ring::rand::SecureRandom;
    let mut key = vec![0u8; GENERATED_PSK_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| Error::Random)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(psk.name.clone()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(BTreeMap::from([(SITE_LABEL.to_owned(), site.name_any())])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(psk.key.clone(), ByteString(key))])),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        // Created meanwhile (another replica, or the store lags): use that one.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The data keys of each Secret of the operator's namespace (never the values).
fn secret_keys(store: &Store<Secret>) -> BTreeMap<String, BTreeSet<String>> {
    store
        .state()
        .iter()
        .map(|s| {
            let keys = s
                .data
                .iter()
                .flat_map(|d| d.keys())
                .chain(s.string_data.iter().flat_map(|d| d.keys()))
                .cloned()
                .collect();
            (s.name_any(), keys)
        })
        .collect()
}

/// The tunnel addresses of the cluster's other sites.
fn other_sites(ctx: &Context, kind: &str, name: &str) -> Vec<(String, IpAddr)> {
    fn address(site: &SiteSpec, status: Option<&SiteStatus>) -> Option<IpAddr> {
        site.tunnel
            .address
            .or(status.and_then(|s| s.tunnel_address))
            .map(|a| a.addr())
    }
    let hubs = ctx.hubs.state().into_iter().filter_map(|h| {
        address(&h.spec.site, h.status.as_ref()).map(|a| (format!("DmvpnHub/{}", h.name_any()), a))
    });
    let spokes = ctx.spokes.state().into_iter().filter_map(|s| {
        address(&s.spec.site, s.status.as_ref())
            .map(|a| (format!("DmvpnSpoke/{}", s.name_any()), a))
    });
    let me = format!("{kind}/{name}");
    hubs.chain(spokes).filter(|(n, _)| *n != me).collect()
}

async fn resolve_hosts(hubs: &[HubRef]) -> BTreeMap<String, IpAddr> {
    let mut out = BTreeMap::new();
    for host in hubs
        .iter()
        .filter(|h| h.nbma_address.is_none())
        .filter_map(|h| h.host.as_ref())
    {
        if let Ok(mut addrs) = tokio::net::lookup_host((host.as_str(), 0)).await
            && let Some(a) = addrs.next()
        {
            out.insert(host.clone(), a.ip());
        }
    }
    out
}

fn cond(type_: &str, status: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: None,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

/// The new conditions, keeping the transition time of those whose status did not change.
fn merge_conditions(old: Option<&SiteStatus>, new: Vec<Condition>) -> Vec<Condition> {
    new.into_iter()
        .map(|mut c| {
            if let Some(prev) = old
                .into_iter()
                .flat_map(|s| s.conditions.iter())
                .find(|p| p.type_ == c.type_ && p.status == c.status)
            {
                c.last_transition_time = prev.last_transition_time.clone();
            }
            c
        })
        .collect()
}

async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    // An event that cannot be written is not worth failing the reconcile for.
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "could not publish an event");
    }
}
