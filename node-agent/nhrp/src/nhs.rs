//! NHS priority and failover, as Cisco IOS's backup NHS and FRR nhrpd's NHS priority
//! (../shared/research/anchors.md sections 1.3 and 2.3): a client registers with its
//! best-priority reachable NHSs only.
//!
//! An NHS is unreachable after [`crate::registration::UNREACHABLE_COUNT`] unanswered
//! requests in a row or a refused registration, and reachable again when it accepts one.
//! The best priority is the lowest value among the reachable NHSs. NHSs of that priority
//! are registered with as usual; better ones, which are unreachable, are probed every
//! holdtime/4 (nhrpd's retry interval); worse ones stand by without traffic. When a better
//! NHS answers a probe the client falls back to it: the worse ones stop being refreshed
//! and their registrations are purged. When no NHS is reachable, every one is tried with
//! backoff until one answers. With equal priorities (Cisco's default) every NHS is
//! registered with at once and stays so.

use core::time::Duration;
use std::time::Instant;

use crate::engine::{Engine, Event};
use crate::registration::Exchange;
use crate::timer::Timer;

/// How a client treats one NHS under NHS priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Of the best priority: registered with and refreshed, retried with backoff.
    Active,
    /// Better than the best priority but unreachable: probed every holdtime/4.
    Probe,
    /// Worse than the best priority: not registered with.
    Standby,
}

impl Engine {
    /// The interval between probes of an unreachable better NHS: holdtime/4, as nhrpd
    /// retries its lower-priority and unreachable NHSs.
    pub(crate) fn probe_interval(&self) -> Duration {
        self.config.holdtime() / 4
    }

    /// Recomputes which NHSs are active, probed or standing by (every one is active when
    /// none is reachable), and acts on each change:
    /// a newly active NHS that is not registered is registered with at once, a newly
    /// probed one waits holdtime/4, and one that stands by stops being refreshed and has
    /// its registration purged.
    pub(crate) fn reselect_nhs(&mut self, now: Instant) {
        let best = self
            .nhs
            .iter()
            .filter(|s| !s.unreachable)
            .map(|s| s.config.priority)
            .min();
        let probe = self.probe_interval();
        for i in 0..self.nhs.len() {
            let st = &self.nhs[i];
            let selection = match best {
                None => Selection::Active,
                Some(best) if st.config.priority == best => Selection::Active,
                Some(best) if st.config.priority < best => Selection::Probe,
                Some(_) => Selection::Standby,
            };
            if selection == st.selection {
                continue;
            }
            self.nhs[i].selection = selection;
            match selection {
                Selection::Active => {
                    if !self.nhs[i].up {
                        self.nhs[i].backoff = self.initial_backoff();
                        self.timers.set(Timer::Registration(i), Some(now));
                    }
                }
                Selection::Probe => {
                    self.timers.set(Timer::Registration(i), Some(now + probe));
                }
                Selection::Standby => self.stand_by(now, i),
            }
        }
    }

    /// Stops using NHS `i`: no more refreshes, its registration purged, down if it was up.
    fn stand_by(&mut self, now: Instant, i: usize) {
        self.timers.set(Timer::Registration(i), None);
        let st = &mut self.nhs[i];
        st.exchange = Exchange::Idle {
            last_request_id: st.exchange.request_id(),
        };
        let registered = st.registered_id.take();
        if st.up {
            st.up = false;
            st.since = now;
            let (nhs, nbma) = (st.config.tunnel, st.config.nbma);
            self.event(Event::NhsDown { nhs, nbma });
        }
        if let Some(id) = registered {
            let own = self.config.nbma_address;
            self.send_registration_purge(i, id, own);
        }
    }
}
