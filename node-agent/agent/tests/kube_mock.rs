//! `run --kube` against a mocked API server (tower-test's `mock::pair`, as kube-rs documents
//! for controllers) and the dataplane's in-memory OS fakes: gateway mode (status writes,
//! live spec changes, restarts, deletion, missing Secrets, API errors) and route-agent mode
//! (routes via the active gateway, failover). Needs no root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmvpn_agent::admin::AdminCommand;
use dmvpn_agent::kube::health::Readiness;
use dmvpn_agent::kube::{Identity, Platform, run_with};
use dmvpn_agent::settings::Settings;
use dmvpn_agent::snapshot::RouterSnapshot;
use dmvpn_crds::{DmvpnNode, DmvpnNodeSpec};
use dmvpn_dataplane::PacketBatch;
use dmvpn_dataplane::os::fake::{FakeNetwork, FakeTun, FakeUdp};
use dmvpn_dataplane::os::{OsRoute, RouteTable, TunDevice, UdpEndpoint};
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};

const NAMESPACE: &str = "kube-dmvpn";

const HUB: &str = "
role: hub
tunnel: {interface: dmvpn0, address: 10.1.1.1/24}
underlay: {address: 198.18.0.1}
nhrp: {networkId: 1, holdTime: 600}
routes:
  advertise: [192.168.1.0/24]
";

/// A static route under `routes` of [`HUB`].
const STATIC: &str = "  static: [{prefix: 172.16.0.0/12, via: 10.1.1.9}]\n";

// ---------------------------------------------------------------------------------------
// The mocked API server.

/// One request the server answered.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    content_type: String,
    body: String,
}

#[derive(Default)]
struct ApiState {
    nodes: BTreeMap<String, Value>,
    secrets: BTreeMap<String, Value>,
    rv: u64,
    /// Watch events: resource version, event JSON.
    events: Vec<(u64, Value)>,
    seen: Vec<Seen>,
    /// Status codes to answer to the next status patches instead of applying them.
    fail_patches: VecDeque<u16>,
    /// Status codes to answer to the next lists.
    fail_lists: VecDeque<u16>,
}

#[derive(Clone, Default)]
struct Api {
    state: Arc<Mutex<ApiState>>,
    changed: Arc<Notify>,
}

fn status_error(code: u16) -> Response<Body> {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        _ => "InternalError",
    };
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("mock {code}"), "reason": reason, "code": code});
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(v: &Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

impl Api {
    fn with<R>(&self, f: impl FnOnce(&mut ApiState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Creates or replaces a DmvpnNode (generation bumps when the spec changes).
    fn put_node(&self, node: DmvpnNode) {
        self.with(|s| {
            s.rv += 1;
            let name = node.metadata.name.clone().unwrap();
            let mut v = serde_json::to_value(&node).unwrap();
            let old = s.nodes.get(&name).cloned();
            let generation = match &old {
                Some(o) if o["spec"] == v["spec"] => o["metadata"]["generation"].as_i64().unwrap(),
                Some(o) => o["metadata"]["generation"].as_i64().unwrap() + 1,
                None => 1,
            };
            v["metadata"]["generation"] = json!(generation);
            v["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            v["metadata"]["uid"] = json!(format!("uid-{name}"));
            if v["status"].is_null()
                && let Some(o) = &old
            {
                v["status"] = o["status"].clone();
            }
            let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
            s.events
                .push((s.rv, json!({"type": kind, "object": v.clone()})));
            s.nodes.insert(name, v);
        });
        self.changed.notify_one();
    }

    fn delete_node(&self, name: &str) {
        self.with(|s| {
            s.rv += 1;
            let mut v = s.nodes.remove(name).unwrap();
            v["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            s.events
                .push((s.rv, json!({"type": "DELETED", "object": v})));
        });
        self.changed.notify_one();
    }

    fn put_secret(&self, name: &str, data: &[(&str, &[u8])]) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                let b64 = k8s_openapi::ByteString(v.to_vec());
                ((*k).to_owned(), serde_json::to_value(b64).unwrap())
            })
            .collect();
        self.with(|s| {
            s.secrets.insert(
                name.to_owned(),
                json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": NAMESPACE}, "data": data}),
            );
        });
    }

    fn status_patches(&self) -> Vec<Seen> {
        self.with(|s| {
            s.seen
                .iter()
                .filter(|r| r.method == "PATCH" && r.uri.contains("/status"))
                .cloned()
                .collect()
        })
    }

    /// Answers one request; a watch with nothing new is returned for later.
    fn answer(&self, seen: &Seen) -> Option<Response<Body>> {
        let mut s = self.state.lock().unwrap();
        let (path, query) = seen.uri.split_once('?').unwrap_or((&seen.uri, ""));
        let nodes_prefix = "/apis/dmvpn.io/v1alpha1/dmvpnnodes";
        if let Some(rest) = path.strip_prefix(&format!("/api/v1/namespaces/{NAMESPACE}/secrets/")) {
            return Some(match s.secrets.get(rest) {
                Some(v) => ok(v),
                None => status_error(404),
            });
        }
        if path == nodes_prefix && seen.method == "GET" {
            if query.contains("watch=true") {
                let since: u64 = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("resourceVersion="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let lines: Vec<u8> = s
                    .events
                    .iter()
                    .filter(|(rv, _)| *rv > since)
                    .flat_map(|(_, e)| {
                        let mut l = serde_json::to_vec(e).unwrap();
                        l.push(b'\n');
                        l
                    })
                    .collect();
                if lines.is_empty() {
                    return None;
                }
                return Some(Response::builder().body(Body::from(lines)).unwrap());
            }
            if let Some(code) = s.fail_lists.pop_front() {
                return Some(status_error(code));
            }
            let items: Vec<Value> = s.nodes.values().cloned().collect();
            return Some(ok(
                &json!({"apiVersion": "dmvpn.io/v1alpha1", "kind": "DmvpnNodeList",
                "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
            ));
        }
        if let Some(name) = path
            .strip_prefix(&format!("{nodes_prefix}/"))
            .and_then(|p| p.strip_suffix("/status"))
            && seen.method == "PATCH"
        {
            if let Some(code) = s.fail_patches.pop_front() {
                return Some(status_error(code));
            }
            let Some(node) = s.nodes.get(name).cloned() else {
                return Some(status_error(404));
            };
            let body: Value = serde_json::from_str(&seen.body).unwrap();
            let mut node = node;
            node["status"] = body["status"].clone();
            s.rv += 1;
            node["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            let rv = s.rv;
            s.events
                .push((rv, json!({"type": "MODIFIED", "object": node.clone()})));
            s.nodes.insert(name.to_owned(), node.clone());
            drop(s);
            self.changed.notify_one();
            return Some(ok(&node));
        }
        Some(status_error(404))
    }

    /// Serves the client's requests until the client goes.
    async fn serve(self, mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>) {
        let mut parked: Vec<(Seen, tower_test::mock::SendResponse<Response<Body>>)> = Vec::new();
        loop {
            tokio::select! {
                next = handle.next_request() => {
                    let Some((request, send)) = next else { return };
                    let method = request.method().to_string();
                    let uri = request.uri().to_string();
                    let content_type = request
                        .headers()
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let body = request.into_body().collect_bytes().await.unwrap();
                    let seen = Seen { method, uri, content_type, body: String::from_utf8_lossy(&body).into_owned() };
                    self.with(|s| s.seen.push(seen.clone()));
                    match self.answer(&seen) {
                        Some(r) => send.send_response(r),
                        None => parked.push((seen, send)),
                    }
                }
                () = self.changed.notified() => {
                    for (seen, send) in core::mem::take(&mut parked) {
                        match self.answer(&seen) {
                            Some(r) => send.send_response(r),
                            None => parked.push((seen, send)),
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The OS: the dataplane's fakes, waiting when there is nothing to read.

#[derive(Clone, Default)]
struct Os {
    net: FakeNetwork,
    tables: Arc<Mutex<BTreeMap<u8, BTreeSet<OsRoute>>>>,
    tuns_created: Arc<AtomicUsize>,
    tuns_open: Arc<AtomicUsize>,
}

impl Os {
    fn routes(&self, protocol: u8) -> BTreeSet<OsRoute> {
        self.tables
            .lock()
            .unwrap()
            .get(&protocol)
            .cloned()
            .unwrap_or_default()
    }
}

struct Tun {
    inner: FakeTun,
    open: Arc<AtomicUsize>,
}

impl Drop for Tun {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl TunDevice for Tun {
    async fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        match self.inner.recv_batch(batch).await? {
            0 => core::future::pending().await,
            n => Ok(n),
        }
    }

    async fn send_batch(&mut self, batch: &PacketBatch) -> io::Result<usize> {
        self.inner.send_batch(batch).await
    }
}

struct Udp(FakeUdp);

impl UdpEndpoint for Udp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    async fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        loop {
            match self.0.recv_batch(batch).await? {
                0 => tokio::time::sleep(Duration::from_millis(100)).await,
                n => return Ok(n),
            }
        }
    }

    async fn send_batch(&mut self, batch: &PacketBatch) -> io::Result<usize> {
        self.0.send_batch(batch).await
    }
}

struct Routes {
    protocol: u8,
    tables: Arc<Mutex<BTreeMap<u8, BTreeSet<OsRoute>>>>,
}

impl RouteTable for Routes {
    async fn list(&mut self) -> io::Result<Vec<OsRoute>> {
        let t = self.tables.lock().unwrap();
        Ok(t.get(&self.protocol)
            .into_iter()
            .flatten()
            .copied()
            .collect())
    }

    async fn add(&mut self, route: OsRoute) -> io::Result<()> {
        let mut t = self.tables.lock().unwrap();
        if !t.entry(self.protocol).or_default().insert(route) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "route exists"));
        }
        Ok(())
    }

    async fn del(&mut self, route: OsRoute) -> io::Result<()> {
        let mut t = self.tables.lock().unwrap();
        if !t.entry(self.protocol).or_default().remove(&route) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such route"));
        }
        Ok(())
    }
}

impl Platform for Os {
    type Tun = Tun;
    type Udp = Udp;
    type Routes = Routes;

    fn tun(&mut self, _settings: &Settings) -> io::Result<(Tun, u32)> {
        self.tuns_created.fetch_add(1, Ordering::SeqCst);
        self.tuns_open.fetch_add(1, Ordering::SeqCst);
        Ok((
            Tun {
                inner: FakeTun::default(),
                open: Arc::clone(&self.tuns_open),
            },
            7,
        ))
    }

    fn udp(&mut self, local: SocketAddr) -> io::Result<Udp> {
        Ok(Udp(self.net.bind(local)))
    }

    fn routes(&mut self, protocol: u8) -> io::Result<Routes> {
        Ok(Routes {
            protocol,
            tables: Arc::clone(&self.tables),
        })
    }

    fn serve_operations(
        &mut self,
        _spec: &DmvpnNodeSpec,
        _snapshots: watch::Receiver<Arc<RouterSnapshot>>,
        _clears: mpsc::Sender<AdminCommand>,
    ) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
        Ok(Vec::new())
    }
}

// ---------------------------------------------------------------------------------------
// The harness.

struct Harness {
    api: Api,
    os: Os,
    readiness: Arc<Readiness>,
    stop: watch::Sender<bool>,
}

/// Runs the agent of node `me` against `api` while `scenario` runs, then stops it.
async fn run<F, Fut>(me: &str, api: Api, scenario: F) -> Harness
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = Harness>,
{
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    tokio::spawn(api.clone().serve(handle));
    let os = Os::default();
    let readiness = Arc::new(Readiness::default());
    let (stop, shutdown) = watch::channel(false);
    let harness = Harness {
        api,
        os: os.clone(),
        readiness: Arc::clone(&readiness),
        stop,
    };
    let identity = Identity {
        node: me.to_owned(),
        namespace: NAMESPACE.to_owned(),
    };
    let agent = run_with(client, identity, os, readiness, shutdown, None);
    let scenario = async move {
        let h = scenario(harness).await;
        h.stop.send_replace(true);
        h
    };
    let (result, h) = tokio::join!(agent, scenario);
    result.unwrap();
    h
}

/// Waits (on virtual time) until `f` holds; fails after ten virtual minutes.
async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..6000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

fn node(name: &str, yaml: &str) -> DmvpnNode {
    DmvpnNode::new(name, DmvpnNodeSpec::from_yaml_str(yaml).unwrap())
}

fn route(prefix: &str, ifindex: u32, via: Option<&str>) -> OsRoute {
    let net: ipnet::IpNet = prefix.parse().unwrap();
    OsRoute {
        prefix: dmvpn_nhrp::Prefix::new(net.network(), net.prefix_len()).unwrap(),
        ifindex,
        via: via.map(|v| v.parse().unwrap()),
    }
}

fn last_status(api: &Api) -> Value {
    let p = api.status_patches();
    let body: Value = serde_json::from_str(&p.last().unwrap().body).unwrap();
    body["status"].clone()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Gateway mode.

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_gateway_runs_its_dmvpnnode_and_writes_its_status_by_server_side_apply() {
    let api = Api::default();
    api.put_node(node("node-a", HUB));
    run("node-a", api, |h| async move {
        until("a status patch", || !h.api.status_patches().is_empty()).await;
        let patch = h.api.status_patches()[0].clone();
        assert!(
            patch
                .uri
                .starts_with("/apis/dmvpn.io/v1alpha1/dmvpnnodes/node-a/status?")
        );
        assert!(
            patch.uri.contains("fieldManager=dmvpn-agent"),
            "{}",
            patch.uri
        );
        assert!(patch.uri.contains("force=true"), "{}", patch.uri);
        assert_eq!(patch.content_type, "application/apply-patch+yaml");
        let body: Value = serde_json::from_str(&patch.body).unwrap();
        assert_eq!(body["apiVersion"], "dmvpn.io/v1alpha1");
        assert_eq!(body["kind"], "DmvpnNode");
        let status = &body["status"];
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(condition(status, "Ready")["status"], "True");
        assert_eq!(condition(status, "Ready")["reason"], "Running");
        assert_eq!(condition(status, "Degraded")["status"], "False");
        assert_eq!(status["nhrp"]["registeredPeers"], 0);
        assert!(status["updatedAt"].is_string());
        assert!(
            status.get("ipsec").is_none(),
            "no ipsec section, no IPsec summary"
        );
        until("ready", || h.readiness.get()).await;
        assert_eq!(h.os.tuns_created.load(Ordering::SeqCst), 1);
        // Nothing changed: no second write, however long it runs.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(h.api.status_patches().len(), 1);
        h
    })
    .await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_spec_change_is_applied_live_and_a_tunnel_change_restarts_the_router() {
    let api = Api::default();
    api.put_node(node("node-a", HUB));
    let h = run("node-a", api, |h| async move {
        until("the first status", || !h.api.status_patches().is_empty()).await;
        // A static route and a new holdtime: live.
        let live = HUB.replace("holdTime: 600", "holdTime: 900") + STATIC;
        h.api.put_node(node("node-a", &live));
        until("the static route", || {
            h.os.routes(212).contains(&route("172.16.0.0/12", 7, None))
        })
        .await;
        until("generation 2 observed", || {
            last_status(&h.api)["observedGeneration"] == 2
        })
        .await;
        assert_eq!(h.os.tuns_created.load(Ordering::SeqCst), 1, "no restart");
        // A new tunnel address: restart.
        h.api
            .put_node(node("node-a", &live.replace("10.1.1.1/24", "10.1.1.5/24")));
        until("a second router", || {
            h.os.tuns_created.load(Ordering::SeqCst) == 2
        })
        .await;
        until("generation 3 observed", || {
            last_status(&h.api)["observedGeneration"] == 3
        })
        .await;
        assert_eq!(
            h.os.tuns_open.load(Ordering::SeqCst),
            1,
            "the first device was closed"
        );
        h
    })
    .await;
    assert_eq!(
        h.os.tuns_open.load(Ordering::SeqCst),
        0,
        "closed at shutdown"
    );
    assert!(h.os.routes(212).is_empty(), "routes removed at shutdown");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn deleting_the_dmvpnnode_stops_the_gateway_and_the_agent_becomes_a_route_agent() {
    let api = Api::default();
    let with_static = format!("{HUB}{STATIC}");
    api.put_node(node("node-a", &with_static));
    run("node-a", api, |h| async move {
        until("the router's route", || !h.os.routes(212).is_empty()).await;
        until("ready", || h.readiness.get()).await;
        h.api.delete_node("node-a");
        until("the TUN device closed", || {
            h.os.tuns_open.load(Ordering::SeqCst) == 0
        })
        .await;
        assert!(h.os.routes(212).is_empty(), "the router's routes are gone");
        // Now a route agent: another node becomes the gateway.
        h.api
            .put_node(gateway("node-b", "172.18.0.3", 2, &["192.168.2.0/24"]));
        until("routes via node-b", || {
            h.os.routes(213)
                .contains(&route("192.168.2.0/24", 0, Some("172.18.0.3")))
        })
        .await;
        h
    })
    .await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_missing_secret_is_a_degraded_condition_that_names_it_and_never_a_value() {
    let api = Api::default();
    // A DmvpnNode's spec may hold Secret references, which a configuration file may not.
    let mut psk = node("node-a", HUB);
    psk.spec.ipsec = Some(
        serde_json::from_value(
            json!({"preSharedKeySecretRef": {"name": "dmvpn-psk", "key": "psk"}}),
        )
        .unwrap(),
    );
    psk.spec.validate().unwrap();
    api.put_node(psk);
    run("node-a", api, |h| async move {
        until("a status patch", || !h.api.status_patches().is_empty()).await;
        let status = last_status(&h.api);
        for type_ in ["Ready", "Degraded"] {
            assert_eq!(condition(&status, type_)["reason"], "SecretMissing");
        }
        assert_eq!(condition(&status, "Ready")["status"], "False");
        assert_eq!(condition(&status, "Degraded")["status"], "True");
        let message = condition(&status, "Degraded")["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains("kube-dmvpn/dmvpn-psk"), "{message}");
        assert_eq!(
            h.os.tuns_created.load(Ordering::SeqCst),
            0,
            "no router without its key"
        );
        assert!(!h.readiness.get());
        // The Secret appears with the wrong key: still missing, the key named, the value not.
        h.api.put_secret("dmvpn-psk", &[("other", b"s3cr3t-value")]);
        until("the missing key reported", || {
            condition(&last_status(&h.api), "Degraded")["message"]
                .as_str()
                .unwrap()
                .contains("has no key psk")
        })
        .await;
        // With the right key the router starts.
        h.api.put_secret("dmvpn-psk", &[("psk", b"s3cr3t-value\n")]);
        until("the router", || {
            h.os.tuns_created.load(Ordering::SeqCst) == 1
        })
        .await;
        until("Ready", || {
            condition(&last_status(&h.api), "Ready")["status"] == "True"
        })
        .await;
        assert!(last_status(&h.api)["ipsec"].is_object());
        for p in h.api.status_patches() {
            assert!(
                !p.body.contains("s3cr3t"),
                "a secret in a status: {}",
                p.body
            );
        }
        h
    })
    .await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn api_errors_are_retried_with_backoff() {
    let api = Api::default();
    api.put_node(node("node-a", HUB));
    api.with(|s| {
        s.fail_lists.extend([500]);
        s.fail_patches.extend([500, 409]);
    });
    run("node-a", api, |h| async move {
        until("the status written", || {
            h.api.with(|s| s.nodes["node-a"]["status"].is_object())
        })
        .await;
        let lists = h.api.with(|s| {
            s.seen
                .iter()
                .filter(|r| {
                    r.method == "GET"
                        && !r.uri.contains("watch=true")
                        && r.uri.contains("dmvpnnodes")
                })
                .count()
        });
        assert!(lists >= 2, "the failed list was retried");
        assert_eq!(h.api.status_patches().len(), 3, "500, 409, then written");
        until("ready", || h.readiness.get()).await;
        h
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Route-agent mode.

fn gateway(name: &str, address: &str, created: i64, remote: &[&str]) -> DmvpnNode {
    let mut n = node(name, HUB);
    n.metadata.labels = Some([("dmvpn.io/site".to_owned(), "hub".to_owned())].into());
    n.metadata.annotations =
        Some([("dmvpn.io/gateway-address".to_owned(), address.to_owned())].into());
    n.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
    ));
    n.status = Some(
        serde_json::from_value(json!({
            "conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "remotePrefixes": remote,
        }))
        .unwrap(),
    );
    n
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_route_agent_routes_via_the_active_gateway_and_follows_a_failover() {
    let api = Api::default();
    api.put_node(gateway(
        "node-a",
        "172.18.0.2",
        1,
        &["192.168.2.0/24", "192.168.3.0/24"],
    ));
    let h = run("node-z", api, |h| async move {
        let via_a: BTreeSet<OsRoute> = [
            route("10.1.1.0/24", 0, Some("172.18.0.2")),
            route("192.168.2.0/24", 0, Some("172.18.0.2")),
            route("192.168.3.0/24", 0, Some("172.18.0.2")),
        ]
        .into();
        until("routes via node-a", || h.os.routes(213) == via_a).await;
        assert!(h.readiness.get(), "ready once listed");
        assert_eq!(
            h.os.tuns_created.load(Ordering::SeqCst),
            0,
            "no router on a route agent"
        );
        // Failover: node-b comes up, node-a goes.
        h.api
            .put_node(gateway("node-b", "172.18.0.3", 2, &["192.168.2.0/24"]));
        h.api.delete_node("node-a");
        let via_b: BTreeSet<OsRoute> = [
            route("10.1.1.0/24", 0, Some("172.18.0.3")),
            route("192.168.2.0/24", 0, Some("172.18.0.3")),
        ]
        .into();
        until("routes via node-b", || h.os.routes(213) == via_b).await;
        h
    })
    .await;
    assert!(h.os.routes(213).is_empty(), "routes removed at shutdown");
}
