//! Configuration updates of a running engine ([`Engine::update_config`]): NHSs, advertised
//! prefixes, password, holdtime and the other per-interface settings change without a
//! restart, so that registrations and shortcuts survive an edit of the configuration.

use core::net::IpAddr;
use std::time::Instant;

use crate::cache::{Entry, EntryType};
use crate::config::{Config, ConfigError, NhsConfig};
use crate::engine::{Engine, Event};
use crate::prefix::Prefix;
use crate::registration::{Exchange, NhsState};
use crate::timer::Timer;

impl Engine {
    /// Applies `config` at `now` without restarting: NHSs that were removed are left (their
    /// registrations purged), new ones are registered with; withdrawn site prefixes are
    /// purged at every NHS holding them and new ones registered; a change of what a
    /// registration carries (prefixes, holdtime, password, unique flag, MTU) re-registers
    /// with every NHS in use at once. NHS priorities are re-evaluated; routes and the other
    /// settings apply from the next packet.
    /// Drain the output afterwards.
    ///
    /// # Errors
    /// The [`ConfigError`] of [`Config::validate`], or [`ConfigError::RestartRequired`]
    /// when the role, tunnel address or prefix length, NBMA address (see
    /// [`Engine::set_nbma_address`]) or cache limit differs. The engine is then unchanged.
    pub fn update_config(&mut self, now: Instant, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        let old = &self.config;
        let fixed = [
            ("role", config.role != old.role),
            (
                "tunnel_address",
                config.tunnel_address != old.tunnel_address,
            ),
            (
                "tunnel_prefix_len",
                config.tunnel_prefix_len != old.tunnel_prefix_len,
            ),
            ("nbma_address", config.nbma_address != old.nbma_address),
            ("cache_limit", config.cache_limit != old.cache_limit),
        ];
        if let Some((field, _)) = fixed.iter().find(|(_, changed)| *changed) {
            return Err(ConfigError::RestartRequired(field));
        }
        let withdrawn: Vec<Prefix> = old
            .advertised_prefixes
            .iter()
            .filter(|p| !config.advertised_prefixes.contains(p))
            .copied()
            .collect();
        let reregister = config.advertised_prefixes != old.advertised_prefixes
            || config.holdtime != old.holdtime
            || config.password != old.password
            || config.unique != old.unique
            || config.mtu != old.mtu;
        let own = old.nbma_address;
        let removed_nhs: Vec<IpAddr> = old
            .nhs
            .iter()
            .filter(|n| !config.nhs.iter().any(|m| m.tunnel == n.tunnel))
            .map(|n| n.tunnel)
            .collect();
        let key = |n: &NhsConfig| (n.tunnel, n.nbma);

        // Leave the removed NHSs and purge the withdrawn prefixes, under the old
        // configuration (whose prefixes the registrations carry).
        for i in 0..self.nhs.len() {
            let kept = config
                .nhs
                .iter()
                .any(|n| key(n) == key(&self.nhs[i].config));
            let st = &mut self.nhs[i];
            if !kept && st.up {
                st.up = false;
                let (nhs, nbma) = (st.config.tunnel, st.config.nbma);
                self.event(Event::NhsDown { nhs, nbma });
            }
            let Some(id) = self.nhs[i].registered_id else {
                continue;
            };
            if !kept {
                self.send_registration_purge(i, id, own);
            } else if !withdrawn.is_empty() {
                self.send_prefix_purge(i, id, own, &withdrawn);
            }
        }

        // The NHS table, its timers and the resolutions in flight, by new index.
        let mut old_states: Vec<Option<NhsState>> = core::mem::take(&mut self.nhs)
            .into_iter()
            .map(Some)
            .collect();
        let mut deadlines = Vec::with_capacity(config.nhs.len());
        let mut new_index = vec![None; old_states.len()];
        for (j, n) in config.nhs.iter().enumerate() {
            let found = old_states
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| key(&s.config) == key(n)));
            let state = match found.and_then(|i| old_states[i].take().map(|s| (i, s))) {
                Some((i, mut st)) => {
                    new_index[i] = Some(j);
                    st.config = *n;
                    let mut at = self.timers.registration(i);
                    if reregister && st.selection != crate::nhs::Selection::Standby {
                        st.exchange = Exchange::Idle {
                            last_request_id: st.exchange.request_id(),
                        };
                        at = Some(now);
                    }
                    deadlines.push(at);
                    st
                }
                None => {
                    deadlines.push(Some(now));
                    NhsState::new(*n, now)
                }
            };
            self.nhs.push(state);
        }
        self.timers.replace_registrations(deadlines);
        let mut lost = Vec::new();
        self.resolutions
            .retain(|_, r| match new_index.get(r.nhs).copied().flatten() {
                Some(j) => {
                    r.nhs = j;
                    true
                }
                None => {
                    lost.push(r.target);
                    false
                }
            });
        for target in lost {
            self.event(Event::ResolutionFailed { target, code: None });
        }
        self.sync_resolution_timer();

        // Static entries of the NHSs and local ones of our prefixes.
        for tunnel in removed_nhs {
            let prefix = Prefix::host(tunnel);
            if self
                .cache
                .get(&prefix)
                .is_some_and(|e| e.kind == EntryType::Static)
            {
                self.cache.remove(&prefix);
            }
        }
        for prefix in &withdrawn {
            if self
                .cache
                .get(prefix)
                .is_some_and(|e| e.kind == EntryType::Local)
            {
                self.cache.remove(prefix);
            }
        }
        self.config = config;
        let me = self.config.tunnel_address;
        let locals: Vec<Prefix> = core::iter::once(Prefix::host(me))
            .chain(self.config.advertised_prefixes.iter().copied())
            .collect();
        for prefix in locals {
            let created = self.cache.get(&prefix).map_or(now, |e| e.created);
            let entry = Entry {
                kind: EntryType::Local,
                tunnel: me,
                nbma: self.config.nbma_address,
                claimed_nbma: self.config.nbma_address,
                created,
                expires: None,
                holdtime: self.config.holdtime,
                unique: self.config.unique,
                request_id: 0,
                used: false,
            };
            // Local and static entries are not dynamic: the limit does not apply.
            let _ = self.cache.insert(prefix, entry);
        }
        for n in self.config.nhs.clone() {
            let prefix = Prefix::host(n.tunnel);
            let stale = self
                .cache
                .get(&prefix)
                .is_none_or(|e| e.kind != EntryType::Static || e.nbma != n.nbma);
            if stale {
                let entry = Entry {
                    kind: EntryType::Static,
                    tunnel: n.tunnel,
                    nbma: n.nbma,
                    claimed_nbma: n.nbma,
                    created: now,
                    expires: None,
                    holdtime: 0,
                    unique: false,
                    request_id: 0,
                    used: false,
                };
                let _ = self.cache.insert(prefix, entry);
            }
        }
        self.reselect_nhs(now);
        self.timers
            .set(Timer::CacheExpiry, self.cache.next_expiry());
        Ok(())
    }
}
