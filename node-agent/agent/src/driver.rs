//! The driver of one DMVPN router: it moves batches between the OS (TUN device, underlay UDP
//! socket, routing table) and the sans-IO forwarder, which owns the NHRP engine (RFC 2332),
//! runs its timers, applies the routes the NHRP cache implies, and publishes
//! [`RouterSnapshot`]s.
//!
//! One step, whatever woke it: feed the input (TUN batch → [`Forwarder::outbound`], UDP
//! batch → [`Forwarder::inbound`], deadline → `handle_timeout`), send the output, drain the
//! events (NHRP changes are logged and mark the routes stale, SA events go to the
//! [`KeyExchange`]), reconcile the routes if stale ([`reconcile`]: idempotent, marker-based,
//! so leftovers of a crashed run go at [`Driver::start`]), publish a snapshot if something
//! changed or a second passed. [`Driver::run`] waits on the OS with tokio; tests call
//! [`Driver::step`] on virtual time with the in-memory fakes.

use core::future::Future;
use core::time::Duration;
use std::collections::BTreeSet;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use dmvpn_dataplane::os::{OsRoute, RouteTable, TunDevice, UdpEndpoint, reconcile};
use dmvpn_dataplane::{Event, Forwarder, Output, PacketBatch, Protection, StaticRoute};
use dmvpn_nhrp::{DropReason as NhrpDrop, Prefix};
use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};

use crate::admin::AdminCommand;
use crate::ipsec::KeyExchange;
use crate::snapshot::{OsDrops, PeerTraffic, RouterSnapshot};

/// Packets moved per batch: as many as one TUN read yields at most (a 64 KiB GSO
/// super-packet split into MTU-sized packets), so that a super-packet crosses the forwarder
/// in one pass and leaves in one GSO send.
pub const BATCH: usize = dmvpn_dataplane::os::linux::SEGMENTS;
/// The longest a published snapshot goes without a refresh.
pub const SNAPSHOT_REFRESH: Duration = Duration::from_secs(1);
/// The least time between two warnings about NHRP authentication failures.
const AUTH_WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// The longest [`Driver::run`] waits at shutdown for the answers to its IKE DELETEs (RFC
/// 7296 section 1.4.1) before it removes its routes: best effort, the DELETEs went out.
pub const SHUTDOWN_LINGER: Duration = Duration::from_secs(1);

/// The time now on tokio's clock: the system's monotonic clock, except in tests that pause
/// and advance tokio's time, where the run loop's deadlines then follow the virtual clock.
fn clock_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What the driver knows of its OS handles besides the traits.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// The TUN device's name.
    pub interface: String,
    /// Its interface index, for routes.
    pub ifindex: u32,
    /// The tunnel MTU in use.
    pub mtu: u16,
    /// Whether GRE goes unprotected.
    pub insecure: bool,
}

/// A configuration change a running router takes without a restart (`run --kube`, when the
/// DmvpnNode's spec changes): the NHRP engine's configuration (RFC 2332 registrations and
/// purges follow, see `dmvpn_nhrp::Engine::update_config`) and the static routes. Peers keep
/// their SAs; the route set is reconciled.
#[derive(Debug, Clone)]
pub struct LiveUpdate {
    /// The new NHRP configuration.
    pub nhrp: dmvpn_nhrp::Config,
    /// The new static routes.
    pub static_routes: Vec<StaticRoute>,
}

/// The OS handles of a driver.
#[derive(Debug)]
pub struct Os<T, U, R> {
    /// The tunnel device.
    pub tun: T,
    /// The underlay socket on the protection's port.
    pub udp: U,
    /// The routing table.
    pub routes: R,
}

/// One router: a forwarder, its key exchange and its OS handles.
#[derive(Debug)]
pub struct Driver<P: Protection, K: KeyExchange<P>, T, U, R> {
    fwd: Forwarder<P>,
    keys: K,
    os: Os<T, U, R>,
    device: DeviceInfo,
    tun_batch: PacketBatch,
    udp_batch: PacketBatch,
    out: Output,
    /// The routes last applied to the OS.
    installed: BTreeSet<Prefix>,
    /// The routes need reconciling (changes, or a failed attempt).
    routes_stale: bool,
    /// Something a snapshot shows changed since the last one.
    changed: bool,
    published_at: Instant,
    snapshot: watch::Sender<Arc<RouterSnapshot>>,
    last_auth_warning: Option<Instant>,
}

impl<P, K, T, U, R> Driver<P, K, T, U, R>
where
    P: Protection,
    K: KeyExchange<P>,
    T: TunDevice,
    U: UdpEndpoint,
    R: RouteTable,
{
    /// A driver around a forwarder whose engine started at `now`.
    pub fn new(
        fwd: Forwarder<P>,
        keys: K,
        os: Os<T, U, R>,
        device: DeviceInfo,
        now: Instant,
    ) -> Self {
        let capacity = fwd.config().packet_capacity;
        let first = snapshot_of(&fwd, &keys, &device, &BTreeSet::new(), os_drops(&os), now);
        Driver {
            fwd,
            keys,
            os,
            device,
            tun_batch: PacketBatch::new(BATCH, capacity),
            udp_batch: PacketBatch::new(BATCH, capacity),
            out: Output::new(BATCH, capacity),
            installed: BTreeSet::new(),
            routes_stale: true,
            changed: false,
            published_at: now,
            snapshot: watch::Sender::new(Arc::new(first)),
            last_auth_warning: None,
        }
    }

    /// A receiver of the router's snapshots: refreshed at least every
    /// [`SNAPSHOT_REFRESH`] and after each state change.
    pub fn snapshot_channel(&self) -> watch::Receiver<Arc<RouterSnapshot>> {
        self.snapshot.subscribe()
    }

    /// The forwarder (tests and show paths).
    pub fn forwarder(&self) -> &Forwarder<P> {
        &self.fwd
    }

    /// The key exchange (tests inspect its engine).
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// The OS handles (tests inspect the fakes).
    pub fn os_mut(&mut self) -> &mut Os<T, U, R> {
        &mut self.os
    }

    /// Applies the routes of the start (static routes; marked leftovers of an earlier run
    /// removed), sends what the engine queued (a spoke's first registrations) and publishes.
    ///
    /// # Errors
    /// The OS error of the routing table or the socket.
    pub async fn start(&mut self, now: Instant) -> io::Result<()> {
        self.fwd.flush_engine(now, &mut self.out);
        self.finish_step(now).await?;
        if self.routes_stale {
            return Err(io::Error::other("cannot apply the routes"));
        }
        Ok(())
    }

    /// One step on the fakes (which never wait): a TUN batch, a UDP batch, the timers due
    /// at `now`, then the output, events, routes and snapshot.
    ///
    /// # Errors
    /// An OS error of the TUN device, the socket or the routing table.
    pub async fn step(&mut self, now: Instant) -> io::Result<()> {
        self.os.tun.recv_batch(&mut self.tun_batch).await?;
        self.fwd.outbound(now, &mut self.tun_batch, &mut self.out);
        self.os.udp.recv_batch(&mut self.udp_batch).await?;
        self.fwd.inbound(now, &mut self.udp_batch, &mut self.out);
        // The fakes never wait; a key exchange without a socket never completes.
        if let Some(r) = self.keys.recv().now_or_never() {
            r?;
            self.keys.handle_received(now, &mut self.fwd, &mut self.out);
        }
        self.timers(now);
        self.finish_step(now).await
    }

    /// Carries out an operator's `clear` command at `now`, then sends what it produced:
    /// `clear ip nhrp` drops the dynamic NHRP cache entries and their routes (a spoke
    /// registers again at once, shortcuts are resolved again on the next redirect), `clear
    /// crypto sa` deletes every IKE SA with a DELETE (RFC 7296 section 1.4.1) and every ESP
    /// SA, which the next packet to a peer negotiates again.
    ///
    /// # Errors
    /// The OS error of the socket.
    pub async fn clear(&mut self, now: Instant, command: AdminCommand) -> io::Result<()> {
        tracing::info!(command = ?command, "clear");
        match command {
            AdminCommand::ClearIpNhrp => {
                self.fwd.engine_mut().clear_dynamic(now);
                self.fwd.flush_engine(now, &mut self.out);
            }
            AdminCommand::ClearCryptoSa => self.keys.clear(now, &mut self.fwd, &mut self.out),
        }
        self.changed = true;
        self.finish_step(now).await
    }

    /// Applies a configuration change at `now` ([`LiveUpdate`]) and sends what it produced
    /// (re-registrations, purges); the routes are reconciled.
    ///
    /// # Errors
    /// The NHRP engine's [`dmvpn_nhrp::ConfigError`] (such as `RestartRequired`) leaves
    /// the router unchanged; a send error of the socket is logged.
    pub async fn update(
        &mut self,
        now: Instant,
        update: LiveUpdate,
    ) -> Result<(), dmvpn_nhrp::ConfigError> {
        self.fwd.engine_mut().update_config(now, update.nhrp)?;
        self.fwd.set_static_routes(&update.static_routes);
        self.fwd.flush_engine(now, &mut self.out);
        self.routes_stale = true;
        self.changed = true;
        tracing::info!("configuration updated live");
        if let Err(e) = self.finish_step(now).await {
            tracing::warn!(error = %e, "underlay send failed");
        }
        Ok(())
    }

    /// Runs until `shutdown` completes or the TUN device fails, carrying out the `clear`
    /// commands of `commands` ([`Driver::clear`]), then shuts down: as
    /// [`Driver::shutdown`], with a wait of at most [`SHUTDOWN_LINGER`] for the peers to
    /// answer the IKE DELETEs.
    ///
    /// # Errors
    /// The TUN device's read error, or an OS error of the routing table at shutdown; errors
    /// of the underlay socket are logged and the loop goes on.
    pub async fn run(
        &mut self,
        shutdown: impl Future<Output = ()>,
        commands: mpsc::Receiver<AdminCommand>,
    ) -> io::Result<()> {
        let (_keep, updates) = mpsc::channel(1);
        self.run_with_updates(shutdown, commands, updates).await
    }

    /// As [`Driver::run`], also applying the configuration changes of `updates`
    /// ([`Driver::update`]); one the engine refuses is logged and skipped.
    ///
    /// # Errors
    /// As [`Driver::run`].
    pub async fn run_with_updates(
        &mut self,
        shutdown: impl Future<Output = ()>,
        mut commands: mpsc::Receiver<AdminCommand>,
        mut updates: mpsc::Receiver<LiveUpdate>,
    ) -> io::Result<()> {
        let mut shutdown = pin!(shutdown);
        loop {
            let deadline = self.deadline();
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(c) = commands.recv() => {
                    if let Err(e) = self.clear(clock_now(), c).await {
                        tracing::warn!(error = %e, "underlay send failed");
                    }
                    continue;
                }
                Some(u) = updates.recv() => {
                    if let Err(e) = self.update(clock_now(), u).await {
                        tracing::error!(error = %e, "the configuration change was refused");
                    }
                    continue;
                }
                r = self.os.tun.recv_batch(&mut self.tun_batch) => match r {
                    Ok(_) => self.fwd.outbound(clock_now(), &mut self.tun_batch, &mut self.out),
                    Err(e) => {
                        tracing::error!(error = %e, "TUN device read failed: shutting down");
                        self.shutdown(clock_now()).await?;
                        return Err(e);
                    }
                },
                r = self.os.udp.recv_batch(&mut self.udp_batch) => match r {
                    Ok(_) => self.fwd.inbound(clock_now(), &mut self.udp_batch, &mut self.out),
                    Err(e) => tracing::warn!(error = %e, "underlay receive failed"),
                },
                r = self.keys.recv() => match r {
                    Ok(_) => self.keys.handle_received(clock_now(), &mut self.fwd, &mut self.out),
                    Err(e) => tracing::warn!(error = %e, "IKE receive failed"),
                },
                () = tokio::time::sleep_until(deadline.into()) => self.timers(clock_now()),
            }
            if let Err(e) = self.finish_step(clock_now()).await {
                tracing::warn!(error = %e, "underlay send failed");
            }
        }
        let sent = self.leave(clock_now()).await;
        self.linger(SHUTDOWN_LINGER).await;
        self.remove_routes(clock_now()).await.and(sent)
    }

    /// Leaves the network: NHRP purges our registrations at every NHS (RFC 2332 section
    /// 5.2.5) and they are sent, the key exchange deletes every IKE SA (RFC 7296 section
    /// 1.4.1: the peers drop theirs at once instead of waiting for dead peer detection),
    /// every route this agent made is removed, and a last snapshot is published. The TUN
    /// device goes when the driver is dropped. Nothing waits for the peers' answers here
    /// ([`Driver::run`] waits a little).
    ///
    /// # Errors
    /// The OS error of the socket or the routing table.
    pub async fn shutdown(&mut self, now: Instant) -> io::Result<()> {
        let sent = self.leave(now).await;
        self.remove_routes(now).await.and(sent)
    }

    /// Sends the NHRP purges, then the IKE DELETEs (the purges travel under the SAs).
    async fn leave(&mut self, now: Instant) -> io::Result<()> {
        self.fwd.engine_mut().shutdown(now);
        self.fwd.flush_engine(now, &mut self.out);
        let purged = self.send_output().await;
        self.drain_events(now);
        self.keys.leave(now, &mut self.fwd, &mut self.out);
        let deleted = self.send_output().await;
        self.drain_events(now);
        purged.and(deleted)
    }

    /// Takes in the peers' answers to our DELETEs until none is awaited or `limit` passed.
    async fn linger(&mut self, limit: Duration) {
        let end = tokio::time::Instant::now() + limit;
        while self.keys.deleting() {
            let deadline = self.deadline();
            let r = tokio::time::timeout_at(end, async {
                tokio::select! {
                    r = self.os.udp.recv_batch(&mut self.udp_batch) => {
                        if r.is_ok() {
                            self.fwd.inbound(clock_now(), &mut self.udp_batch, &mut self.out);
                        }
                    }
                    r = self.keys.recv() => {
                        if r.is_ok() {
                            self.keys.handle_received(clock_now(), &mut self.fwd, &mut self.out);
                        }
                    }
                    () = tokio::time::sleep_until(deadline.into()) => self.timers(clock_now()),
                }
            })
            .await;
            if r.is_err() {
                tracing::info!("shutting down without the answers to every IKE DELETE");
                return;
            }
            let now = clock_now();
            let _ = self.send_output().await;
            self.drain_events(now);
            let _ = self.send_output().await;
        }
    }

    /// Removes every route this agent made and publishes a last snapshot.
    async fn remove_routes(&mut self, now: Instant) -> io::Result<()> {
        reconcile(&mut self.os.routes, &BTreeSet::new()).await?;
        self.installed.clear();
        self.publish(now);
        tracing::info!("shut down: registrations purged, SAs deleted, routes removed");
        Ok(())
    }

    /// When the next timer, key-exchange timer or snapshot refresh is due.
    fn deadline(&self) -> Instant {
        let refresh = self.published_at + SNAPSHOT_REFRESH;
        [self.fwd.poll_timeout(), self.keys.poll_timeout()]
            .into_iter()
            .flatten()
            .fold(refresh, Instant::min)
    }

    fn timers(&mut self, now: Instant) {
        if self.fwd.poll_timeout().is_some_and(|t| t <= now) {
            self.fwd.handle_timeout(now, &mut self.out);
        }
        if self.keys.poll_timeout().is_some_and(|t| t <= now) {
            self.keys.handle_timeout(now, &mut self.fwd, &mut self.out);
        }
    }

    async fn send_output(&mut self) -> io::Result<()> {
        let udp = if self.out.udp.is_empty() {
            Ok(0)
        } else {
            self.os.udp.send_batch(&self.out.udp).await
        };
        let tun = if self.out.tun.is_empty() {
            Ok(0)
        } else {
            self.os.tun.send_batch(&self.out.tun).await
        };
        self.out.clear();
        let ike = self.keys.send().await;
        udp.and(tun).and(ike).map(drop)
    }

    /// Sends the output, drains the events (whose handling may add output), reconciles the
    /// routes and publishes.
    async fn finish_step(&mut self, now: Instant) -> io::Result<()> {
        let mut sent = self.send_output().await;
        if self.drain_events(now) {
            sent = sent.and(self.send_output().await);
        }
        if self.routes_stale {
            self.apply_routes().await;
        }
        if self.changed || now.saturating_duration_since(self.published_at) >= SNAPSHOT_REFRESH {
            self.publish(now);
        }
        sent
    }

    /// Handles the forwarder's events; true when they produced output.
    fn drain_events(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.fwd.poll_event() {
            self.changed = true;
            match event {
                Event::Nhrp(e) => any |= self.nhrp_event(now, e),
                e @ (Event::NeedSa { .. } | Event::IkeDatagram { .. } | Event::Sa(_)) => {
                    self.keys.handle_event(now, e, &mut self.fwd, &mut self.out);
                    any = true;
                }
            }
        }
        // The key exchange may also have queued datagrams on its own socket.
        any
    }

    /// Logs an NHRP event and acts on it; true when that produced output.
    fn nhrp_event(&mut self, now: Instant, event: dmvpn_nhrp::Event) -> bool {
        use dmvpn_nhrp::Event as E;
        match event {
            E::NhsUp { nhs, nbma } => tracing::info!(%nhs, %nbma, "registered with NHS"),
            E::NhsDown { nhs, nbma } => {
                tracing::warn!(%nhs, %nbma, "NHS down");
                // Silent (not refusing, not purged by us): a restarted NHS lost the SAs we
                // seal its registrations with, so they are renegotiated.
                let silent = self.fwd.engine().show_nhs(now).iter().any(|s| {
                    s.tunnel == nhs && s.unanswered >= dmvpn_nhrp::registration::UNREACHABLE_COUNT
                });
                if silent {
                    self.keys
                        .peer_unresponsive(now, nbma, &mut self.fwd, &mut self.out);
                    return true;
                }
            }
            E::RegistrationRefused { nhs, prefix, code } => {
                tracing::warn!(%nhs, %prefix, code = ?code, "NHS refused our registration");
            }
            E::NatDetected { nhs, nat_nbma } => {
                tracing::info!(%nhs, %nat_nbma, "behind NAT");
            }
            E::CacheAdded { prefix, entry } | E::CacheUpdated { prefix, entry } => {
                self.routes_stale = true;
                tracing::info!(%prefix, via = %entry.tunnel, nbma = %entry.nbma, kind = ?entry.kind, "NHRP cache entry");
            }
            E::CacheRemoved {
                prefix,
                entry,
                reason,
            } => {
                self.routes_stale = true;
                tracing::info!(%prefix, via = %entry.tunnel, kind = ?entry.kind, reason = ?reason, "NHRP cache entry removed");
            }
            E::CacheFull { prefix } => tracing::warn!(%prefix, "NHRP cache full: entry refused"),
            E::PacketDropped { from, reason } => {
                let auth = matches!(
                    reason,
                    NhrpDrop::AuthenticationMismatch | NhrpDrop::AuthenticationMissing
                );
                let quiet = self
                    .last_auth_warning
                    .is_some_and(|t| now.saturating_duration_since(t) < AUTH_WARNING_INTERVAL);
                if auth && !quiet {
                    self.last_auth_warning = Some(now);
                    tracing::warn!(%from, reason = reason.label(), "NHRP authentication failed: packet dropped");
                } else {
                    tracing::debug!(%from, reason = reason.label(), "NHRP packet dropped");
                }
            }
            E::ResolutionFailed { target, code } => {
                tracing::info!(%target, code = ?code, "NHRP resolution failed");
            }
            E::ErrorIndicationReceived { from, code } => {
                tracing::warn!(%from, code = ?code, "NHRP error indication");
            }
        }
        false
    }

    /// Makes the OS routes into the tunnel device the forwarder's desired routes.
    async fn apply_routes(&mut self) {
        let desired = self.fwd.desired_routes();
        let ifindex = self.device.ifindex;
        let os: BTreeSet<OsRoute> = desired
            .iter()
            .map(|&prefix| OsRoute {
                prefix,
                ifindex,
                via: None,
            })
            .collect();
        match reconcile(&mut self.os.routes, &os).await {
            Ok(done) => {
                for r in &done.added {
                    tracing::info!(prefix = %r.prefix, "route added");
                }
                for r in &done.removed {
                    tracing::info!(prefix = %r.prefix, "route removed");
                }
                self.changed |= !done.added.is_empty() || !done.removed.is_empty();
                self.installed = desired;
                self.routes_stale = false;
            }
            Err(e) => tracing::warn!(error = %e, "routes not applied; retrying at the next step"),
        }
    }

    fn publish(&mut self, now: Instant) {
        let drops = os_drops(&self.os);
        let snapshot = snapshot_of(
            &self.fwd,
            &self.keys,
            &self.device,
            &self.installed,
            drops,
            now,
        );
        let c = &snapshot.dataplane;
        tracing::debug!(
            target: "dmvpn_agent::stats",
            tun_rx = c.tun_rx,
            tun_tx = c.tun_tx,
            udp_rx = c.udp_rx,
            udp_tx = c.udp_tx,
            forwarded = c.forwarded,
            dropped = c.dropped_total(),
            nhrp_rx = c.nhrp_rx,
            nhrp_tx = c.nhrp_tx,
            nhrp_dropped = snapshot.nhrp_traffic.dropped_total(),
            nhrp_auth_dropped = snapshot.nhrp_traffic.dropped(NhrpDrop::AuthenticationMismatch)
                + snapshot.nhrp_traffic.dropped(NhrpDrop::AuthenticationMissing),
            nhs_up = snapshot.nhs.iter().filter(|n| n.up).count(),
            ike_sas_up = snapshot.ike_sas.iter().filter(|sa| sa.state == crate::snapshot::IkeSaState::Established).count(),
            ipsec_sas = snapshot.ipsec_sas.len(),
            ike_auth_failures = snapshot.ike_failures.iter().filter(|(r, _)| r.contains("authentication")).map(|(_, n)| n).sum::<u64>(),
            shortcuts = snapshot.nhrp.iter().filter(|e| e.kind == dmvpn_nhrp::EntryType::Shortcut).count(),
            routes = %snapshot.routes.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            "stats"
        );
        self.snapshot.send_replace(Arc::new(snapshot));
        self.published_at = now;
        self.changed = false;
    }
}

/// What the OS handles dropped so far.
fn os_drops<T: TunDevice, U: UdpEndpoint, R>(os: &Os<T, U, R>) -> OsDrops {
    OsDrops {
        tun: os.tun.drops(),
        udp: os.udp.drops(),
    }
}

/// The state of a router at `now`.
fn snapshot_of<P: Protection, K: KeyExchange<P>>(
    fwd: &Forwarder<P>,
    keys: &K,
    device: &DeviceInfo,
    installed: &BTreeSet<Prefix>,
    os_drops: OsDrops,
    now: Instant,
) -> RouterSnapshot {
    let engine = fwd.engine();
    let config = engine.config();
    let mut peers: Vec<PeerTraffic> = fwd
        .peer_counters()
        .iter()
        .map(|(&nbma, &counters)| PeerTraffic { nbma, counters })
        .collect();
    peers.sort_by_key(|p| p.nbma);
    RouterSnapshot {
        taken_at: now,
        role: config.role,
        tunnel_interface: device.interface.clone(),
        tunnel_address: config.tunnel_address,
        tunnel_prefix_len: config.tunnel_prefix_len,
        tunnel_mtu: device.mtu,
        underlay_address: config.nbma_address,
        insecure: device.insecure,
        dmvpn: engine.show_dmvpn(now),
        nhrp: engine.show_nhrp(now),
        nhs: engine.show_nhs(now),
        nhrp_traffic: engine.counters().clone(),
        dataplane: fwd.counters().clone(),
        peers,
        ipsec_sas: keys.ipsec_sas(fwd),
        ike_sas: keys.ike_sas(now),
        ike_failures: keys.ike_failures(),
        routes: installed.iter().copied().collect(),
        os_drops,
    }
}
