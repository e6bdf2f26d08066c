//! The reconcile paths against a mocked API server (tower-test, as kube-rs's controller-rs
//! `fixtures.rs` does): each test scripts the requests the reconcile must make, in order, with
//! the answers, and checks what was sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dmvpn_crds::{DmvpnHub, DmvpnNode, DmvpnSpoke};
use dmvpn_operator::controller::{self, Context, FINALIZER};
use dmvpn_operator::metrics::Metrics;
use http::{Request, Response};
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::api::networking::v1::ServiceCIDR;
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request: method, a piece of its URI, and the answer.
struct Expect {
    method: &'static str,
    path: &'static str,
    status: u16,
    /// The answer's body; `None` echoes the request's.
    body: Option<Value>,
}

fn ok(method: &'static str, path: &'static str, body: Option<Value>) -> Expect {
    Expect {
        method,
        path,
        status: 200,
        body,
    }
}

fn fail(method: &'static str, path: &'static str, code: u16) -> Expect {
    let reason = if code == 409 {
        "Conflict"
    } else {
        "InternalError"
    };
    Expect {
        method,
        path,
        status: code,
        body: Some(
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "scripted failure", "reason": reason, "code": code}),
        ),
    }
}

/// Answers the script in order; returns what each request carried.
async fn serve(mut handle: Handle, script: Vec<Expect>) -> Vec<(String, String, Value)> {
    let mut seen = Vec::new();
    for e in script {
        let (req, send) = handle
            .next_request()
            .await
            .expect("the reconcile stopped short");
        let method = req.method().to_string();
        let uri = req.uri().to_string();
        assert_eq!(method, e.method, "{uri} (seen so far: {seen:?})");
        assert!(uri.contains(e.path), "{method} {uri}, expected {}", e.path);
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let answer = e.body.unwrap_or_else(|| body.clone());
        send.send_response(
            Response::builder()
                .status(e.status)
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap(),
        );
        seen.push((method, uri, body));
    }
    seen
}

fn store<K>(objects: Vec<K>) -> kube::runtime::reflector::Store<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut w = Writer::default();
    for o in objects {
        w.apply_watcher_event(&watcher::Event::Apply(o));
    }
    w.as_reader()
}

fn node(name: &str, ready: bool) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"dmvpn.io/gateway": "true"}},
        "spec": {"podCIDRs": [format!("10.244.{}.0/24", name.len())]},
        "status": {
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "addresses": [{"type": "InternalIP", "address": format!("172.18.0.{}", name.len())}]
        }
    }))
    .unwrap()
}

fn secret(name: &str, key: &str) -> Secret {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "kube-dmvpn"},
        "data": {key: "QGxwaGE="}
    }))
    .unwrap()
}

fn hub(extra_meta: Value, status: Value) -> DmvpnHub {
    let mut meta = json!({"name": "hub", "uid": "u-1", "generation": 3, "finalizers": [FINALIZER]});
    for (k, v) in extra_meta.as_object().unwrap() {
        meta[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "dmvpn.io/v1alpha1",
        "kind": "DmvpnHub",
        "metadata": meta,
        "spec": {
            "tunnel": {"address": "10.1.1.1/24"},
            "nhrp": {"networkId": 1, "authenticationSecretRef": {"name": "dmvpn-nhrp-auth", "key": "password"}},
            "ipsec": {"preSharedKeySecretRef": {"name": "dmvpn-psk"}},
            "gateway": {"nodeSelector": {"dmvpn.io/gateway": "true"}}
        },
        "status": status
    }))
    .unwrap()
}

fn dmvpn_node(name: &str) -> DmvpnNode {
    serde_json::from_value(json!({
        "apiVersion": "dmvpn.io/v1alpha1", "kind": "DmvpnNode",
        "metadata": {"name": name, "labels": {"dmvpn.io/site": "hub", "dmvpn.io/role": "hub"}},
        "spec": {
            "role": "hub", "tunnel": {"interface": "dmvpn0", "address": "10.1.1.1/24"},
            "underlay": {"address": "172.18.0.2"}, "nhrp": {"networkId": 1}
        }
    }))
    .unwrap()
}

struct World {
    nodes: Vec<Node>,
    secrets: Vec<Secret>,
    dmvpn_nodes: Vec<DmvpnNode>,
    hubs: Vec<DmvpnHub>,
    spokes: Vec<DmvpnSpoke>,
    service_cidrs: Vec<ServiceCIDR>,
}

impl World {
    fn new() -> Self {
        World {
            nodes: vec![node("n1", true), node("node2", true)],
            secrets: vec![
                secret("dmvpn-psk", "psk"),
                secret("dmvpn-nhrp-auth", "password"),
            ],
            dmvpn_nodes: vec![],
            hubs: vec![],
            spokes: vec![],
            service_cidrs: vec![],
        }
    }

    fn context(self) -> (Arc<Context>, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let ctx = Context {
            client,
            namespace: "kube-dmvpn".to_owned(),
            nodes: store(self.nodes),
            secrets: store(self.secrets),
            hubs: store(self.hubs),
            spokes: store(self.spokes),
            dmvpn_nodes: store(self.dmvpn_nodes),
            service_cidrs: store(self.service_cidrs),
            metrics: Metrics::new().unwrap(),
            reporter: Reporter {
                controller: "dmvpn-operator".into(),
                instance: Some("test".into()),
            },
            agent_metrics_listen: "0.0.0.0:9469".parse().unwrap(),
        };
        (Arc::new(ctx), handle)
    }
}

/// Runs one hub reconcile against `script`; returns its result and the requests seen.
async fn run(
    world: World,
    site: DmvpnHub,
    script: Vec<Expect>,
) -> (
    Result<kube::runtime::controller::Action, controller::Error>,
    Vec<(String, String, Value)>,
    Arc<Context>,
) {
    let (ctx, handle) = world.context();
    let server = tokio::spawn(serve(handle, script));
    let result = controller::reconcile(Arc::new(site), ctx.clone()).await;
    let seen = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the reconcile made fewer requests than scripted")
        .unwrap();
    (result, seen, ctx)
}

fn hub_json(h: &DmvpnHub) -> Option<Value> {
    Some(serde_json::to_value(h).unwrap())
}

fn condition<'a>(status_patch: &'a Value, type_: &str) -> &'a Value {
    status_patch["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

#[tokio::test]
async fn happy_path_renders_the_dmvpn_node_and_status() {
    let h = hub(json!({}), json!(null));
    let script = vec![
        ok("PATCH", "/apis/dmvpn.io/v1alpha1/dmvpnnodes/n1?", None),
        ok(
            "PATCH",
            "/apis/dmvpn.io/v1alpha1/dmvpnhubs/hub/status?",
            hub_json(&h),
        ),
    ];
    let mut world = World::new();
    world.service_cidrs = vec![
        serde_json::from_value(json!({
            "metadata": {"name": "kubernetes"},
            "spec": {"cidrs": ["10.96.0.0/16", "fd00:10:96::/112"]}
        }))
        .unwrap(),
    ];
    let (result, seen, ctx) = run(world, h, script).await;
    result.unwrap();
    // Server-side apply, forced, as the operator's field manager.
    assert!(
        seen[0].1.contains("fieldManager=dmvpn-operator") && seen[0].1.contains("force=true"),
        "{}",
        seen[0].1
    );
    let node = &seen[0].2;
    assert_eq!(node["metadata"]["labels"]["dmvpn.io/site"], "hub");
    assert_eq!(node["metadata"]["labels"]["dmvpn.io/role"], "hub");
    assert_eq!(
        node["metadata"]["annotations"]["dmvpn.io/gateway-address"],
        "172.18.0.2"
    );
    assert_eq!(node["metadata"]["ownerReferences"][0]["uid"], "u-1");
    assert_eq!(node["metadata"]["ownerReferences"][0]["kind"], "DmvpnHub");
    assert_eq!(node["spec"]["tunnel"]["address"], "10.1.1.1/24");
    assert_eq!(node["spec"]["underlay"]["address"], "172.18.0.2");
    assert_eq!(
        node["spec"]["ipsec"]["preSharedKeySecretRef"],
        json!({"name": "dmvpn-psk", "key": "psk"})
    );
    assert_eq!(
        node["spec"]["routes"]["advertise"],
        json!(["10.96.0.0/16", "10.244.2.0/24", "10.244.5.0/24"])
    );
    let status = &seen[1].2;
    assert_eq!(status["status"]["activeNode"], "n1");
    assert_eq!(status["status"]["nbmaAddress"], "172.18.0.2");
    assert_eq!(status["status"]["observedGeneration"], 3);
    let ready = condition(status, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("AgentPending"))
    );
    assert_eq!(condition(status, "Degraded")["status"], "False");
    assert_eq!(
        ctx.metrics
            .reconciles
            .with_label_values(&["DmvpnHub"])
            .get(),
        1
    );
}

#[tokio::test]
async fn ready_agent_makes_the_site_ready() {
    let h = hub(json!({}), json!({"activeNode": "n1"}));
    let mut world = World::new();
    let mut n = dmvpn_node("n1");
    n.status = Some(
        serde_json::from_value(json!({"conditions": [{
        "type": "Ready", "status": "True", "reason": "Registered", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}))
        .unwrap(),
    );
    world.dmvpn_nodes.push(n);
    let script = vec![
        ok("PATCH", "dmvpnnodes/n1?", None),
        ok("PATCH", "dmvpnhubs/hub/status?", hub_json(&h)),
    ];
    let (result, seen, _) = run(world, h, script).await;
    result.unwrap();
    assert_eq!(condition(&seen[1].2, "Ready")["status"], "True");
}

#[tokio::test]
async fn failover_moves_the_dmvpn_node() {
    let h = hub(
        json!({}),
        json!({"activeNode": "n1", "tunnelAddress": "10.1.1.1/24"}),
    );
    let mut world = World::new();
    world.nodes = vec![node("n1", false), node("node2", true)];
    world.dmvpn_nodes.push(dmvpn_node("n1"));
    let script = vec![
        ok(
            "DELETE",
            "/apis/dmvpn.io/v1alpha1/dmvpnnodes/n1",
            Some(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
        ),
        ok("PATCH", "dmvpnnodes/node2?", None),
        ok(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            None,
        ),
        ok("PATCH", "dmvpnhubs/hub/status?", hub_json(&h)),
    ];
    let (result, seen, _) = run(world, h, script).await;
    result.unwrap();
    assert_eq!(
        seen[1].2["metadata"]["annotations"]["dmvpn.io/gateway-address"],
        "172.18.0.5"
    );
    assert_eq!(seen[2].2["reason"], "Failover");
    assert!(
        seen[2].2["note"]
            .as_str()
            .unwrap()
            .contains("from node n1 to node2"),
        "{}",
        seen[2].2
    );
    assert_eq!(seen[3].2["status"]["activeNode"], "node2");
}

#[tokio::test]
async fn missing_secret_is_a_condition_and_an_event() {
    let h = hub(json!({}), json!(null));
    let mut world = World::new();
    world
        .secrets
        .retain(|s| s.metadata.name.as_deref() != Some("dmvpn-psk"));
    let script = vec![
        ok("POST", "/events", None),
        ok("PATCH", "dmvpnhubs/hub/status?", hub_json(&h)),
    ];
    let (result, seen, ctx) = run(world, h, script).await;
    result.unwrap();
    assert_eq!(seen[0].2["type"], "Warning");
    assert_eq!(seen[0].2["reason"], "SecretMissing");
    assert!(
        seen[0].2["note"]
            .as_str()
            .unwrap()
            .contains("kube-dmvpn/dmvpn-psk does not exist")
    );
    let ready = condition(&seen[1].2, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("SecretMissing"))
    );
    assert_eq!(condition(&seen[1].2, "Degraded")["status"], "True");
    assert_eq!(
        ctx.metrics
            .problems
            .with_label_values(&["DmvpnHub", "SecretMissing"])
            .get(),
        1
    );
}

#[tokio::test]
async fn no_matching_node_is_reported() {
    let h = hub(json!({}), json!(null));
    let mut world = World::new();
    world.nodes = vec![node("n1", false)];
    let script = vec![
        ok("POST", "/events", None),
        ok("PATCH", "dmvpnhubs/hub/status?", hub_json(&h)),
    ];
    let (result, seen, _) = run(world, h, script).await;
    result.unwrap();
    assert_eq!(seen[0].2["reason"], "NoMatchingNode");
    assert_eq!(condition(&seen[1].2, "Ready")["reason"], "NoMatchingNode");
}

#[tokio::test]
async fn address_conflict_is_reported() {
    let h = hub(json!({}), json!(null));
    let mut world = World::new();
    let mut other = hub(json!({}), json!(null));
    other.metadata.name = Some("hub-b".into());
    world.hubs = vec![h.clone(), other];
    let script = vec![
        ok("POST", "/events", None),
        ok("PATCH", "dmvpnhubs/hub/status?", hub_json(&h)),
    ];
    let (result, seen, _) = run(world, h, script).await;
    result.unwrap();
    assert_eq!(seen[0].2["reason"], "AddressConflict");
    assert!(
        seen[0].2["note"]
            .as_str()
            .unwrap()
            .contains("DmvpnHub/hub-b"),
        "{}",
        seen[0].2
    );
}

#[tokio::test]
async fn generated_psk_secret_is_created_once() {
    let mut h = hub(json!({}), json!(null));
    h.spec
        .site
        .ipsec
        .as_mut()
        .unwrap()
        .pre_shared_key_secret_ref
        .as_mut()
        .unwrap()
        .generate = true;
    let mut world = World::new();
    world
        .secrets
        .retain(|s| s.metadata.name.as_deref() != Some("dmvpn-psk"));
    let script = vec![
        ok("POST", "/api/v1/namespaces/kube-dmvpn/secrets", None),
        ok("POST", "/events", None),
        ok("PATCH", "dmvpnnodes/n1?", None),
        ok("PATCH", "dmvpnhubs/hub/status?", hub_json(&h)),
    ];
    let (result, seen, _) = run(world, h.clone(), script).await;
    result.unwrap();
    let secret = &seen[0].2;
    let psk = secret["data"]["psk"].as_str().unwrap();
    // 32 random bytes, base64: 44 characters.
    assert_eq!(psk.len(), 44, "{psk}");
    assert_ne!(psk, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    assert_eq!(seen[1].2["reason"], "PreSharedKeyGenerated");
    // The event names the Secret, never the key.
    assert!(!seen[1].2.to_string().contains(psk));
    // Created meanwhile by someone else (409): the reconcile goes on with it.
    let mut world = World::new();
    world
        .secrets
        .retain(|s| s.metadata.name.as_deref() != Some("dmvpn-psk"));
    let script = vec![
        fail("POST", "/secrets", 409),
        ok("POST", "/events", None),
        ok("PATCH", "dmvpnnodes/n1?", None),
        ok("PATCH", "dmvpnhubs/hub/status?", hub_json(&h)),
    ];
    let (result, _, _) = run(world, h.clone(), script).await;
    result.unwrap();
    // Present: nothing generated.
    let script = vec![
        ok("PATCH", "dmvpnnodes/n1?", None),
        ok("PATCH", "dmvpnhubs/hub/status?", hub_json(&h)),
    ];
    let (result, _, _) = run(World::new(), h, script).await;
    result.unwrap();
}

#[tokio::test]
async fn finalizer_is_added_then_cleans_dmvpn_nodes_on_deletion() {
    // Without the finalizer, the first reconcile adds it and stops.
    let mut fresh = hub(json!({}), json!(null));
    fresh.metadata.finalizers = None;
    let script = vec![ok(
        "PATCH",
        "/apis/dmvpn.io/v1alpha1/dmvpnhubs/hub?",
        hub_json(&hub(json!({}), json!(null))),
    )];
    let (result, seen, _) = run(World::new(), fresh, script).await;
    result.unwrap();
    assert!(seen[0].2.to_string().contains(FINALIZER), "{}", seen[0].2);
    // Deleted: the site's DmvpnNodes go, then the finalizer.
    let deleting = hub(
        json!({"deletionTimestamp": "2026-01-01T00:00:00Z"}),
        json!({"activeNode": "n1"}),
    );
    let mut world = World::new();
    world.dmvpn_nodes = vec![dmvpn_node("n1"), dmvpn_node("old")];
    let mut unrelated = dmvpn_node("n9");
    unrelated
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("dmvpn.io/site".into(), "other".into());
    world.dmvpn_nodes.push(unrelated);
    let script = vec![
        ok(
            "DELETE",
            "dmvpnnodes/n1",
            Some(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
        ),
        fail("DELETE", "dmvpnnodes/old", 404),
        ok(
            "PATCH",
            "/apis/dmvpn.io/v1alpha1/dmvpnhubs/hub?",
            hub_json(&deleting),
        ),
    ];
    let (result, seen, _) = run(world, deleting, script).await;
    result.unwrap();
    assert!(
        seen[2].2.to_string().contains("remove") || seen[2].2.to_string().contains("finalizers"),
        "{}",
        seen[2].2
    );
}

#[tokio::test]
async fn api_errors_fail_the_reconcile_with_a_label() {
    for (code, label) in [(500, "api"), (409, "conflict")] {
        let h = hub(json!({}), json!(null));
        let script = vec![fail("PATCH", "dmvpnnodes/n1?", code)];
        let (result, _, ctx) = run(World::new(), h.clone(), script).await;
        let e = result.unwrap_err();
        assert_eq!(e.metric_label(), label, "{e}");
        let action = controller::error_policy(Arc::new(h), &e, ctx.clone());
        assert_eq!(
            action,
            kube::runtime::controller::Action::requeue(Duration::from_secs(15))
        );
        assert_eq!(
            ctx.metrics
                .failures
                .with_label_values(&["DmvpnHub", label])
                .get(),
            1
        );
    }
    // A failing status write fails the reconcile too.
    let h = hub(json!({}), json!(null));
    let script = vec![
        ok("PATCH", "dmvpnnodes/n1?", None),
        fail("PATCH", "dmvpnhubs/hub/status?", 500),
    ];
    let (result, _, _) = run(World::new(), h, script).await;
    assert_eq!(result.unwrap_err().metric_label(), "api");
}

#[tokio::test]
async fn spoke_takes_a_pool_address_clear_of_other_sites() {
    let mut world = World::new();
    world.hubs = vec![hub(json!({}), json!(null))];
    let spoke: DmvpnSpoke = serde_json::from_value(json!({
        "apiVersion": "dmvpn.io/v1alpha1", "kind": "DmvpnSpoke",
        "metadata": {"name": "spoke1", "uid": "u-2", "finalizers": [FINALIZER]},
        "spec": {
            "tunnel": {"pool": {"subnet": "10.1.1.0/24"}},
            "nhrp": {"networkId": 1},
            "ipsec": {"preSharedKeySecretRef": {"name": "dmvpn-psk"}},
            "hubs": [{"tunnelAddress": "10.1.1.1", "nbmaAddress": "198.18.0.1"}]
        }
    }))
    .unwrap();
    world.spokes = vec![spoke.clone()];
    let (ctx, handle) = world.context();
    let script = vec![
        ok("PATCH", "dmvpnnodes/n1?", None),
        ok(
            "PATCH",
            "dmvpnspokes/spoke1/status?",
            Some(serde_json::to_value(&spoke).unwrap()),
        ),
    ];
    let server = tokio::spawn(serve(handle, script));
    controller::reconcile(Arc::new(spoke), ctx).await.unwrap();
    let seen = server.await.unwrap();
    assert_eq!(seen[0].2["spec"]["tunnel"]["address"], "10.1.1.2/24");
    assert_eq!(seen[0].2["spec"]["role"], "spoke");
    assert_eq!(seen[0].2["metadata"]["labels"]["dmvpn.io/role"], "spoke");
    assert_eq!(
        seen[0].2["spec"]["nhrp"]["servers"][0]["nbmaAddress"],
        "198.18.0.1"
    );
    assert_eq!(seen[1].2["status"]["tunnelAddress"], "10.1.1.2/24");
}
