//! Leader election through a coordination.k8s.io/v1 Lease, so that two operator replicas
//! never reconcile at once: the holder renews every [`RENEW_EVERY`]; another replica takes
//! over once [`LEASE_DURATION`] passes without a renewal. Writes carry the Lease's
//! `resourceVersion`, so two replicas racing for it get one success and one 409 Conflict.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

/// Seconds a Lease stays valid without renewal.
pub const LEASE_DURATION: i32 = 15;
/// How often the holder renews, and a follower checks.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);

/// What a replica does with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Another holder let it expire (or none holds it): take it over.
    Acquire,
    /// Another replica holds it.
    Follow(String),
}

/// Decides from the Lease as read at `now`.
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or("");
    if holder == me {
        return Decision::Renew;
    }
    let duration = spec
        .and_then(|s| s.lease_duration_seconds)
        .unwrap_or(LEASE_DURATION);
    let renewed = spec.and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()));
    let expired = match renewed {
        Some(t) => t.0 + SignedDuration::from_secs(i64::from(duration)) < now,
        None => true,
    };
    if holder.is_empty() || expired {
        Decision::Acquire
    } else {
        Decision::Follow(holder.to_owned())
    }
}

/// Reads the Lease once and acts on it; true when we hold it afterwards.
///
/// # Errors
/// API errors other than a lost race (409), which is `Ok(false)`.
pub async fn try_hold(api: &Api<Lease>, name: &str, me: &str) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(name).await?;
    let decision = decide(current.as_ref(), me, now);
    let result = match (decision, current) {
        (Decision::Create, _) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                spec: Some(held(me, now, None, 0)),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        (Decision::Renew | Decision::Acquire, Some(mut lease)) => {
            let old = lease.spec.take().unwrap_or_default();
            let ours = old.holder_identity.as_deref() == Some(me);
            let transitions = old.lease_transitions.unwrap_or(0) + i32::from(!ours);
            let acquired = if ours { old.acquire_time } else { None };
            lease.spec = Some(held(me, now, acquired, transitions));
            api.replace(name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        (Decision::Follow(holder), _) => {
            tracing::debug!(%holder, "another replica leads");
            return Ok(false);
        }
        (Decision::Renew | Decision::Acquire, None) => return Ok(false),
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

fn held(me: &str, now: Timestamp, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(LEASE_DURATION),
        acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn lease(holder: &str, renewed_secs_ago: i64) -> Lease {
        let now = Timestamp::now();
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(LEASE_DURATION),
                renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_secs_ago))),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn decisions() {
        let now = Timestamp::now();
        assert_eq!(decide(None, "a", now), Decision::Create);
        assert_eq!(decide(Some(&lease("a", 3)), "a", now), Decision::Renew);
        assert_eq!(decide(Some(&lease("a", 100)), "a", now), Decision::Renew);
        assert_eq!(
            decide(Some(&lease("b", 3)), "a", now),
            Decision::Follow("b".into())
        );
        assert_eq!(decide(Some(&lease("b", 16)), "a", now), Decision::Acquire);
        assert_eq!(decide(Some(&lease("", 1)), "a", now), Decision::Acquire);
        let never_renewed = Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some("b".into()),
                ..LeaseSpec::default()
            }),
        };
        assert_eq!(decide(Some(&never_renewed), "a", now), Decision::Acquire);
    }
}
