//! Routes into the tunnel device, reconciled from desired state against the fake routing
//! table: leftovers of a crashed run are removed, missing routes added, a second run
//! changes nothing, and an empty desired state (shutdown) leaves no marked route.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{HUB, SPOKE1, SPOKE2, Sim, ready};
use dmvpn_dataplane::os::fake::FakeRouteTable;
use dmvpn_dataplane::os::{OsRoute, Reconciled, reconcile};
use dmvpn_nhrp::Prefix;

fn route(prefix: &str, len: u8, ifindex: u32) -> OsRoute {
    OsRoute {
        prefix: Prefix::new(prefix.parse().unwrap(), len).unwrap(),
        ifindex,
        via: None,
    }
}

#[test]
fn reconcile_converges_and_is_idempotent() {
    let mut sim = Sim::plain();
    for _ in 0..20 {
        sim.step();
    }
    // The hub routes both spokes' LANs into the tunnel; a spoke its static summary.
    let desired = |r: usize, ifindex: u32| -> BTreeSet<OsRoute> {
        sim.routers[r]
            .fwd
            .desired_routes()
            .into_iter()
            .map(|prefix| OsRoute {
                prefix,
                ifindex,
                via: None,
            })
            .collect()
    };
    let hub = desired(HUB, 9);
    assert_eq!(
        hub,
        [route("192.168.2.0", 24, 9), route("192.168.3.0", 24, 9)].into()
    );
    assert_eq!(desired(SPOKE1, 9), [route("192.168.0.0", 16, 9)].into());
    assert_eq!(desired(SPOKE2, 9).len(), 1);

    // A crashed run left a route on its old device (index 7) and one still wanted.
    let mut table = FakeRouteTable::default();
    table.routes.insert(route("192.168.2.0", 24, 9));
    table.routes.insert(route("192.168.77.0", 24, 7));
    let done = ready(reconcile(&mut table, &hub)).unwrap();
    assert_eq!(
        done,
        Reconciled {
            added: vec![route("192.168.3.0", 24, 9)],
            removed: vec![route("192.168.77.0", 24, 7)],
        }
    );
    assert_eq!(table.routes, hub);
    let ops = table.operations;
    assert_eq!(
        ready(reconcile(&mut table, &hub)).unwrap(),
        Reconciled::default()
    );
    assert_eq!(table.operations, ops);
    // Shutdown.
    let done = ready(reconcile(&mut table, &BTreeSet::new())).unwrap();
    assert_eq!(done.removed.len(), 2);
    assert!(table.routes.is_empty());
}
