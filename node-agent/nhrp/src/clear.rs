//! `clear ip nhrp` (Cisco IOS): the operator drops what the cache learned, and the router
//! learns it again the way it learned it first (RFC 2332 section 5.2.3 registrations, section
//! 5.2.1 resolutions).
//!
//! - Registered entries (an NHS) go: each client registers again at its next refresh
//!   (`registrationTimeout`), as with IOS, and its routes come back then.
//! - Shortcuts and incomplete entries (a client) go, with the resolutions in flight: the next
//!   packet goes through the hub again, whose redirect starts a new resolution.
//! - A client registers again with every NHS in use at once, so that its own registration
//!   is known to be fresh.
//!
//! Static entries (configured NHSs) and local ones (own addresses and prefixes) stay.

use std::time::Instant;

use crate::cache::Entry;
use crate::engine::{Engine, Event, RemoveReason};
use crate::nhs::Selection;
use crate::prefix::Prefix;
use crate::registration::Exchange;
use crate::timer::Timer;

impl Engine {
    /// Drops every dynamic cache entry (registered, shortcut, incomplete), each reported by
    /// [`Event::CacheRemoved`] with [`RemoveReason::Cleared`], forgets the resolutions in
    /// flight and the shortcuts handed out, and registers again at once with every NHS in
    /// use whose registration is not in flight. Drain the output afterwards.
    pub fn clear_dynamic(&mut self, now: Instant) {
        let dynamic: Vec<(Prefix, Entry)> = self
            .cache
            .iter()
            .filter(|(_, e)| e.kind.is_dynamic())
            .map(|(p, e)| (*p, *e))
            .collect();
        for (prefix, entry) in dynamic {
            self.cache.remove(&prefix);
            self.event(Event::CacheRemoved {
                prefix,
                entry,
                reason: RemoveReason::Cleared,
            });
        }
        self.shortcut_holders.clear();
        self.shortcut_holders_len = 0;
        self.shortcut_refresh.clear();
        self.sync_refresh_timer();
        self.resolutions.clear();
        self.sync_resolution_timer();
        self.sync_cache_timer();
        for i in 0..self.nhs.len() {
            let st = &self.nhs[i];
            if st.selection != Selection::Standby && matches!(st.exchange, Exchange::Idle { .. }) {
                self.timers.set(Timer::Registration(i), Some(now));
            }
        }
    }
}
