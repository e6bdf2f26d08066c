//! Leader election against a mocked API server: create, renew, take over an expired Lease,
//! follow a live one, and lose a race (409) without an error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dmvpn_operator::lease::{LEASE_DURATION, try_hold};
use http::{Request, Response};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::client::Body;
use kube::{Api, Client};
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Answers each `(method, status, body)` in order (`None` echoes the request); returns the
/// request bodies.
async fn serve(mut handle: Handle, script: Vec<(&'static str, u16, Option<Value>)>) -> Vec<Value> {
    let mut seen = Vec::new();
    for (method, status, answer) in script {
        let (req, send) = handle.next_request().await.expect("a request");
        assert_eq!(req.method().as_str(), method, "{}", req.uri());
        assert!(
            req.uri()
                .path()
                .contains("/apis/coordination.k8s.io/v1/namespaces/kube-dmvpn/leases")
        );
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let answer = answer.unwrap_or_else(|| body.clone());
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap(),
        );
        seen.push(body);
    }
    seen
}

fn lease(holder: &str, renewed_secs_ago: i64) -> Value {
    let t = Timestamp::now() - SignedDuration::from_secs(renewed_secs_ago);
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "kube-dmvpn-operator", "namespace": "kube-dmvpn", "resourceVersion": "7"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": LEASE_DURATION,
                 "renewTime": t.to_string(), "acquireTime": t.to_string(), "leaseTransitions": 2}
    })
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})
}

fn conflict() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409})
}

async fn hold(
    script: Vec<(&'static str, u16, Option<Value>)>,
) -> (Result<bool, kube::Error>, Vec<Value>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api: Api<Lease> = Api::namespaced(Client::new(service, "default"), "kube-dmvpn");
    let server = tokio::spawn(serve(handle, script));
    let held = try_hold(&api, "kube-dmvpn-operator", "op-a").await;
    (held, server.await.unwrap())
}

#[tokio::test]
async fn creates_an_absent_lease() {
    let (held, seen) = hold(vec![("GET", 404, Some(not_found())), ("POST", 201, None)]).await;
    assert!(held.unwrap());
    assert_eq!(seen[1]["spec"]["holderIdentity"], "op-a");
    assert_eq!(seen[1]["spec"]["leaseDurationSeconds"], LEASE_DURATION);
}

#[tokio::test]
async fn renews_its_own_lease_keeping_the_acquire_time() {
    let (held, seen) = hold(vec![
        ("GET", 200, Some(lease("op-a", 4))),
        ("PUT", 200, None),
    ])
    .await;
    assert!(held.unwrap());
    let spec = &seen[1]["spec"];
    assert_eq!(spec["leaseTransitions"], 2);
    assert_ne!(spec["renewTime"], spec["acquireTime"]);
    // The write is guarded by the version read.
    assert_eq!(seen[1]["metadata"]["resourceVersion"], "7");
}

#[tokio::test]
async fn takes_over_an_expired_lease() {
    let (held, seen) = hold(vec![
        ("GET", 200, Some(lease("op-b", 60))),
        ("PUT", 200, None),
    ])
    .await;
    assert!(held.unwrap());
    assert_eq!(seen[1]["spec"]["holderIdentity"], "op-a");
    assert_eq!(seen[1]["spec"]["leaseTransitions"], 3);
}

#[tokio::test]
async fn follows_a_live_holder() {
    let (held, seen) = hold(vec![("GET", 200, Some(lease("op-b", 2)))]).await;
    assert!(!held.unwrap());
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn a_lost_race_is_not_an_error() {
    let (held, _) = hold(vec![
        ("GET", 200, Some(lease("op-b", 60))),
        ("PUT", 409, Some(conflict())),
    ])
    .await;
    assert!(!held.unwrap());
    let (held, _) = hold(vec![
        ("GET", 404, Some(not_found())),
        ("POST", 409, Some(conflict())),
    ])
    .await;
    assert!(!held.unwrap());
    // Other API errors are.
    let err = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError", "code": 500});
    let (held, _) = hold(vec![("GET", 500, Some(err))]).await;
    assert!(held.is_err());
}
