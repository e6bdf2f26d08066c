//! How the driver gets SAs for the protection layer: the IKEv2 wiring (RFC 7296) lives here
//! alone, behind [`KeyExchange`]. [`IkeKeys`] runs the `dmvpn-ike` engine on UDP 500 and,
//! through the dataplane's socket, on UDP 4500 (RFC 7296 section 2.23), and turns its
//! CHILD_SAs into `dmvpn_esp` SAs of the forwarder's ESP-in-UDP layer (RFC 3948). Without an
//! `ipsec` section, [`Unprotected`] stands in: GRE-in-UDP (RFC 8086) needs no SA, and the
//! agent warns that the tunnel is insecure.

use core::future::Future;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use dmvpn_crds::{ConfigError, IpsecMode, IpsecSpec, Issue, PreSharedKey};
use dmvpn_dataplane::os::UdpEndpoint;
use dmvpn_dataplane::{
    EspInUdp, EspMode, Event, Forwarder, GreInUdp, Output, PacketBatch, Protection,
};
use dmvpn_esp::{InboundSa, OutboundSa, SaConfig};
use dmvpn_ike::cert::{CertError, Credentials, TrustStore};
use dmvpn_ike::{
    Authenticator, ChildSaUp, DownReason, Engine, EspKeys, FailReason, Mode, PskAuthenticator,
    SignatureAuthenticator, UdpEncap, WallClock,
};
use dmvpn_wire::ikev2::{ExchangeType, NotifyType, Packet as IkePacket};
use dmvpn_wire::udp_encap::{Datagram, IKE_PORT, NAT_T_PORT};
use prometheus::Histogram;
use ring::rand::SystemRandom;

use crate::snapshot::{IkeSaInfo, IkeSaState, IpsecSaInfo};

/// What negotiates the SAs of a forwarder's protection layer.
pub trait KeyExchange<P: Protection> {
    /// Acts on a forwarder event about SAs: [`Event::NeedSa`], [`Event::IkeDatagram`],
    /// [`Event::Sa`]; other events are not given.
    fn handle_event(
        &mut self,
        now: Instant,
        event: Event,
        fwd: &mut Forwarder<P>,
        out: &mut Output,
    );

    /// When [`KeyExchange::handle_timeout`] must next run.
    fn poll_timeout(&self) -> Option<Instant>;

    /// `peer` stopped answering over the SAs we hold with it (an NHS that no longer answers
    /// registrations, as after it restarted and lost its SAs): replaces them with fresh ones
    /// (RFC 7296 section 2.4: a peer that lost its state is reached over new SAs only). A
    /// key exchange without SAs has nothing to do.
    fn peer_unresponsive(
        &mut self,
        _now: Instant,
        _peer: IpAddr,
        _fwd: &mut Forwarder<P>,
        _out: &mut Output,
    ) {
    }

    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant, fwd: &mut Forwarder<P>, out: &mut Output);

    /// Waits for datagrams on the key exchange's own socket (IKE on UDP 500) and takes them
    /// in, for [`KeyExchange::handle_received`]; never completes for one without a socket.
    /// Cancel-safe.
    ///
    /// # Errors
    /// The socket's error.
    fn recv(&mut self) -> impl Future<Output = io::Result<usize>> + Send {
        core::future::pending()
    }

    /// Processes what [`KeyExchange::recv`] took in.
    fn handle_received(&mut self, _now: Instant, _fwd: &mut Forwarder<P>, _out: &mut Output) {}

    /// Sends what the key exchange queued on its own socket.
    ///
    /// # Errors
    /// The socket's error.
    fn send(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        core::future::ready(Ok(()))
    }

    /// Deletes every SA (`clear crypto sa`): each IKE SA with an INFORMATIONAL DELETE (RFC
    /// 7296 section 1.4.1), so that the peer drops its half at once, and the forwarder's ESP
    /// SAs right away; the next packet to a peer negotiates new ones.
    fn clear(&mut self, _now: Instant, _fwd: &mut Forwarder<P>, _out: &mut Output) {}

    /// Leaves at shutdown: deletes every SA as [`KeyExchange::clear`] does, and from now on
    /// starts and accepts no new one.
    fn leave(&mut self, _now: Instant, _fwd: &mut Forwarder<P>, _out: &mut Output) {}

    /// Whether DELETEs sent by [`KeyExchange::leave`] still wait for their answers (the
    /// agent waits for them, bounded, before it stops).
    fn deleting(&self) -> bool {
        false
    }

    /// The ESP SA pairs, for `show crypto ipsec sa`.
    fn ipsec_sas(&self, fwd: &Forwarder<P>) -> Vec<IpsecSaInfo>;

    /// The IKE SAs at `now`, for `show crypto ikev2 sa`.
    fn ike_sas(&self, now: Instant) -> Vec<IkeSaInfo>;

    /// IKE SA setups that failed, by reason label (`authentication`, `peer_refused`,
    /// `timeout`, ...), for metrics and the stats log line.
    fn ike_failures(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::new()
    }
}

/// Why the `ipsec` section cannot be turned into an engine configuration.
#[derive(Debug, thiserror::Error)]
pub enum IpsecError {
    /// The pre-shared key file, or a certificate, key or CA file, is unreadable or invalid
    /// (the message names the field).
    #[error("{0}")]
    Key(#[from] ConfigError),
    /// The IKE engine refused its configuration (a proposal, say).
    #[error("ipsec: {0}")]
    Engine(#[from] dmvpn_ike::ConfigError),
}

/// The IKE engine's configuration and the ESP mode of the dataplane, from the `ipsec`
/// section (IOS `crypto ikev2 ...`, `crypto ipsec transform-set`, `tunnel protection`).
#[derive(Debug, Clone)]
pub struct IpsecSettings {
    /// The engine's configuration (the PSK inside is redacted in `Debug`).
    pub ike: dmvpn_ike::Config,
    /// The ESP mode the forwarder seals in.
    pub mode: EspMode,
}

impl IpsecSettings {
    /// Builds the engine configuration for our underlay address `local`, reading the
    /// pre-shared key file or the certificate, key and CA files; `key_log` keeps SA keys
    /// for [`KeyLogFile`].
    ///
    /// ESP always travels in UDP 4500 here (RFC 3948): the userspace dataplane has no raw
    /// ESP socket, so encapsulation is forced whatever `forceUdpEncap` says (it is logged).
    ///
    /// # Errors
    /// [`IpsecError`].
    pub fn from_spec(spec: &IpsecSpec, local: IpAddr, key_log: bool) -> Result<Self, IpsecError> {
        Self::from_spec_with(spec, local, key_log, None)
    }

    /// As [`IpsecSettings::from_spec`], with the pre-shared key or the certificate read
    /// from Kubernetes Secrets (`ipsec.preSharedKeySecretRef`, `ipsec.certificateSecretRef`)
    /// when `secret` is given.
    ///
    /// # Errors
    /// [`IpsecError`].
    pub fn from_spec_with(
        spec: &IpsecSpec,
        local: IpAddr,
        key_log: bool,
        secret: Option<&SecretMaterial>,
    ) -> Result<Self, IpsecError> {
        let identity = spec.identity.as_ref().map(|id| match id {
            dmvpn_crds::Identity::Address(a) => dmvpn_ike::Identity::address(*a),
            dmvpn_crds::Identity::Fqdn(n) => dmvpn_ike::Identity::fqdn(n),
            dmvpn_crds::Identity::KeyId(k) => dmvpn_ike::Identity::key_id(k.as_bytes()),
        });
        let own = || {
            identity
                .clone()
                .unwrap_or_else(|| dmvpn_ike::Identity::address(local))
        };
        let auth: Arc<dyn Authenticator> = match (secret, spec) {
            (Some(SecretMaterial::PreSharedKey(psk)), _) => {
                Arc::new(PskAuthenticator::new(psk.expose()))
            }
            (Some(SecretMaterial::Certificate { chain, key, ca }), _) => {
                let field = if spec.identity.is_some() {
                    "ipsec.identity"
                } else {
                    "ipsec.certificateSecretRef"
                };
                let mut key = key.clone();
                let pem = Pem {
                    chain,
                    key: &mut key,
                    ca,
                    names: PemNames::secret(),
                };
                Arc::new(pem.authenticator(&own(), field)?)
            }
            (
                None,
                IpsecSpec {
                    pre_shared_key_file: Some(path),
                    ..
                },
            ) => {
                let psk = PreSharedKey::read(path)?;
                Arc::new(PskAuthenticator::new(psk.expose()))
            }
            (
                None,
                IpsecSpec {
                    certificate_file: Some(cert),
                    private_key_file: Some(key),
                    ca_file: Some(ca),
                    ..
                },
            ) => {
                let own = own();
                let files = CertificateFiles { cert, key, ca };
                let field = if spec.identity.is_some() {
                    "ipsec.identity"
                } else {
                    "ipsec.certificateFile"
                };
                Arc::new(files.authenticator(&own, field)?)
            }
            _ => {
                return Err(IpsecError::Key(invalid(
                    "ipsec",
                    "no authentication: set preSharedKeyFile, or certificateFile, privateKeyFile and caFile",
                )));
            }
        };
        let ike: Vec<&str> = spec.ike.iter().map(String::as_str).collect();
        let esp: Vec<&str> = spec.esp.iter().map(String::as_str).collect();
        let mut config = dmvpn_ike::Config::new(local, auth).with_proposals(&ike, &esp)?;
        let (mode, esp_mode) = match spec.mode {
            IpsecMode::Transport => (Mode::Transport, EspMode::Transport),
            IpsecMode::Tunnel => (Mode::Tunnel, EspMode::Tunnel),
        };
        config.mode = mode;
        // The dataplane seals in one mode: a peer asking for the other is answered with ours
        // when it is tunnel, and transport is only taken when we run it (section 1.3.1).
        config.allow_transport = mode == Mode::Transport;
        config.udp_encap = UdpEncap::Forced;
        // Periodic checks when configured (IOS `crypto ikev2 dpd N R periodic`), else on
        // demand (IOS `... on-demand`): only when traffic goes out and nothing comes back.
        config.dpd_interval = spec.dpd_interval.map(|s| Duration::from_secs(u64::from(s)));
        config.dpd_on_demand = config.dpd_interval.is_none().then_some(DPD_ON_DEMAND);
        config.identity = identity;
        config.key_log = key_log;
        config.validate()?;
        Ok(IpsecSettings {
            ike: config,
            mode: esp_mode,
        })
    }
}

/// A configuration error at the field `path`.
fn invalid(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: None,
        issues: vec![Issue {
            path: path.to_owned(),
            message: message.into(),
        }],
    }
}

/// The certificate files of the `ipsec` section (IOS `crypto pki trustpoint`).
struct CertificateFiles<'a> {
    cert: &'a Path,
    key: &'a Path,
    ca: &'a Path,
}

impl CertificateFiles<'_> {
    /// Reads the files into a digital-signature authenticator ([`Pem::authenticator`]).
    fn authenticator(
        &self,
        own: &dmvpn_ike::Identity,
        field: &str,
    ) -> Result<SignatureAuthenticator, ConfigError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let chain = read(self.cert)?;
        let mut key = read(self.key)?;
        let ca = read(self.ca)?;
        let names = PemNames {
            cert: self.cert.display().to_string(),
            key: self.key.display().to_string(),
            ca: self.ca.display().to_string(),
            cert_field: "ipsec.certificateFile",
            key_field: "ipsec.privateKeyFile",
            ca_field: "ipsec.caFile",
        };
        Pem {
            chain: &chain,
            key: &mut key,
            ca: &ca,
            names,
        }
        .authenticator(own, field)
    }
}

/// Where the three PEM documents came from, for messages: file names and their fields, or
/// the keys of a `kubernetes.io/tls` Secret.
struct PemNames {
    cert: String,
    key: String,
    ca: String,
    cert_field: &'static str,
    key_field: &'static str,
    ca_field: &'static str,
}

impl PemNames {
    /// The keys of the `ipsec.certificateSecretRef` Secret.
    fn secret() -> PemNames {
        PemNames {
            cert: format!("Secret key {}", dmvpn_crds::TLS_CERT_KEY),
            key: format!("Secret key {}", dmvpn_crds::TLS_PRIVATE_KEY_KEY),
            ca: format!("Secret key {}", dmvpn_crds::TLS_CA_KEY),
            cert_field: "ipsec.certificateSecretRef",
            key_field: "ipsec.certificateSecretRef",
            ca_field: "ipsec.certificateSecretRef",
        }
    }
}

/// A certificate chain, its private key and the CAs, as PEM.
struct Pem<'a> {
    chain: &'a [u8],
    /// Overwritten once parsed.
    key: &'a mut Vec<u8>,
    ca: &'a [u8],
    names: PemNames,
}

impl Pem<'_> {
    /// A digital-signature authenticator (RFC 7427) whose validity checks follow the wall
    /// clock, after checking what a peer will check (RFC 4945 section 3.1, RFC 5280 section
    /// 6): that the key is the certificate's, that the certificate chains to a CA and is
    /// valid now, and that it names `own`, the identity sent in IKE_AUTH (`field` is where a
    /// mismatch is reported).
    fn authenticator(
        self,
        own: &dmvpn_ike::Identity,
        field: &str,
    ) -> Result<SignatureAuthenticator, ConfigError> {
        let n = &self.names;
        let (cert, key, ca) = (&n.cert, &n.key, &n.ca);
        let trust = TrustStore::from_pem(self.ca).map_err(|e| {
            invalid(
                n.ca_field,
                format!("{ca}: {e}: give the PEM certificates of the CAs that sign the routers' certificates"),
            )
        })?;
        let credentials = Credentials::from_pem(self.chain, self.key, &SystemRandom::new());
        // The key's bytes go at once (best effort without `unsafe`).
        self.key.fill(0);
        core::hint::black_box(&self.key);
        let credentials = credentials.map_err(|e| match e {
            CertError::KeyNotCertified => invalid(
                n.key_field,
                format!("{key} does not match the certificate of {cert}: give the key the certificate was issued for"),
            ),
            CertError::Key(e) => invalid(
                n.key_field,
                format!("{key}: {e}: give a PKCS #8 PEM key (ECDSA P-256, P-384 or Ed25519)"),
            ),
            e => invalid(
                n.cert_field,
                format!("{cert}: {e}: give this router's PEM certificate first, then its intermediates"),
            ),
        })?;
        let (leaf, intermediates) = credentials
            .chain()
            .split_first()
            .ok_or_else(|| invalid(n.cert_field, format!("{cert}: no certificate")))?;
        let intermediates: Vec<&[u8]> = intermediates.iter().map(Vec::as_slice).collect();
        let now = SystemTime::now();
        let certified = trust.verify(leaf, &intermediates, now).map_err(|e| {
            invalid(
                n.cert_field,
                format!("{cert}: {e} (checked against {ca}): peers would refuse it"),
            )
        })?;
        certified.check_id(&own.wire()).map_err(|e| {
            invalid(
                field,
                format!("{cert}: {e}: the identity sent in IKE_AUTH must be a subjectAltName of the certificate (RFC 4945 section 3.1); set ipsec.identity to one, or issue the certificate with the underlay address as an IP subjectAltName"),
            )
        })?;
        let clock = WallClock {
            instant: Instant::now(),
            system: now,
        };
        Ok(SignatureAuthenticator::new(credentials, trust, clock))
    }
}

/// IKE credentials read from Kubernetes Secrets instead of files (`run --kube`).
pub enum SecretMaterial {
    /// The pre-shared key of `ipsec.preSharedKeySecretRef`.
    PreSharedKey(PreSharedKey),
    /// The PEM documents of the `kubernetes.io/tls` Secret of `ipsec.certificateSecretRef`.
    Certificate {
        /// `tls.crt`: this router's certificate, then its intermediates.
        chain: Vec<u8>,
        /// `tls.key`: its private key.
        key: Vec<u8>,
        /// `ca.crt`: the CAs peers' certificates chain to.
        ca: Vec<u8>,
    },
}

impl core::fmt::Debug for SecretMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SecretMaterial::PreSharedKey(_) => f.write_str("PreSharedKey(<redacted>)"),
            SecretMaterial::Certificate { .. } => f.write_str("Certificate(<redacted>)"),
        }
    }
}

impl Drop for SecretMaterial {
    fn drop(&mut self) {
        if let SecretMaterial::Certificate { key, .. } = self {
            key.fill(0);
            core::hint::black_box(key);
        }
    }
}

/// The key log file of `--key-log`: the engine's [`dmvpn_ike::KeyLog`] as JSON, rewritten
/// through a temporary file and a rename whenever it changes, so a reader never sees half.
#[derive(Debug)]
pub struct KeyLogFile {
    path: PathBuf,
    written: String,
}

impl KeyLogFile {
    /// A key log at `path`, written at the first change.
    pub fn new(path: PathBuf) -> Self {
        KeyLogFile {
            path,
            written: String::new(),
        }
    }

    fn update(&mut self, engine: &Engine) {
        let json = engine.key_log().to_json();
        if json == self.written {
            return;
        }
        let tmp = self.path.with_extension("tmp");
        match std::fs::write(&tmp, &json).and_then(|()| std::fs::rename(&tmp, &self.path)) {
            Ok(()) => self.written = json,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "key log not written")
            }
        }
    }
}

/// The least time between two warnings about failed IKE authentication.
const AUTH_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// IKEv2 (RFC 7296) for an ESP-in-UDP forwarder: the engine, its UDP 500 socket `U`, and
/// the glue. The forwarder's `NeedSa` starts an initiation, its `IkeDatagram`s (UDP 4500
/// behind the non-ESP marker) go to the engine, the engine's CHILD_SAs become SA pairs of
/// the forwarder (whose queued packets then go), and its datagrams leave from port 500
/// through `U` or from port 4500 through the forwarder's output.
#[derive(Debug)]
pub struct IkeKeys<U> {
    engine: Engine,
    local: IpAddr,
    socket: U,
    rx: PacketBatch,
    tx: PacketBatch,
    key_log: Option<KeyLogFile>,
    /// When each established IKE SA (by SPIi, SPIr) came up.
    up_since: HashMap<(u64, u64), Instant>,
    /// Peers we installed SA pairs for.
    peers: BTreeSet<IpAddr>,
    failures: BTreeMap<&'static str, u64>,
    last_auth_warning: Option<Instant>,
    /// When the first IKE_SA_INIT request of each IKE SA being set up went out or came in,
    /// by SPIi (64 random bits, RFC 7296 section 2.6): the start of its handshake.
    started: HashMap<u64, Instant>,
    /// Where handshake durations go (`dmvpn_ike_handshake_duration_seconds`).
    handshakes: Option<Histogram>,
    /// The agent is stopping: no new SA.
    leaving: bool,
    /// ESP seen going to and coming from each peer, for on-demand liveness checks.
    activity: HashMap<IpAddr, Activity>,
    /// When the dataplane's per-peer counters are next sampled into `activity`.
    next_sample: Option<Instant>,
}

/// How often the per-peer ESP counters are sampled for on-demand liveness checks: the
/// resolution of "nothing came back for a while" (RFC 7296 section 2.4).
/// How long traffic to a peer may go unanswered before an on-demand liveness check when no
/// `dpdInterval` is configured (IOS's `crypto ikev2 dpd 10 2 on-demand`, RFC 7296 section
/// 2.4).
pub const DPD_ON_DEMAND: Duration = Duration::from_secs(10);

/// How often the per-peer ESP counters are sampled ... placeholder
const ACTIVITY_SAMPLE: Duration = Duration::from_secs(1);

/// The ESP traffic with one peer as of the last sample.
#[derive(Debug, Clone, Copy, Default)]
struct Activity {
    tx_packets: u64,
    rx_packets: u64,
    /// The first sample that saw the sent count grow.
    sent: Option<Instant>,
    /// The first sample that saw the received count grow.
    received: Option<Instant>,
}

/// The most IKE handshakes timed at once; beyond, the stale ones are forgotten, and new ones
/// go untimed while all are fresh (spoofed IKE_SA_INIT requests cannot grow the table).
const MAX_TIMED_HANDSHAKES: usize = 4096;
/// A handshake not done after this long is forgotten by the timing (the engine gave up
/// long before: RFC 7296 section 2.4 retransmissions).
const HANDSHAKE_STALE: Duration = Duration::from_secs(120);

/// The SPIi of an IKE_SA_INIT request (RFC 7296 section 3.1: message ID 0, the response
/// flag clear) in `message`, an IKE header first; `None` for anything else.
fn init_request_spi(message: &[u8]) -> Option<u64> {
    let packet = IkePacket::new_checked(message).ok()?;
    let init = packet.exchange_type() == ExchangeType::IkeSaInit
        && packet.message_id() == 0
        && !packet.flags().response();
    init.then(|| packet.initiator_spi())
}

/// The IKE message of a UDP payload received or sent on `port`: as is on 500, behind the
/// non-ESP marker on 4500 (RFC 3948 section 2.2).
fn ike_message(port: u16, payload: &[u8]) -> Option<&[u8]> {
    if port == NAT_T_PORT {
        match Datagram::parse(payload) {
            Ok(Datagram::Ike(m)) => Some(m),
            _ => None,
        }
    } else {
        Some(payload)
    }
}

/// The size of IKE datagram buffers (an IKE message with certificates can be large; RFC
/// 7296 section 2 asks for at least 3000 bytes).
const IKE_BUFFER: usize = 9216;
/// IKE datagrams per receive batch.
const IKE_BATCH: usize = 16;

impl<U: UdpEndpoint + Send> IkeKeys<U> {
    /// The glue around `engine`, whose UDP 500 socket is `socket`, writing the key log to
    /// `key_log` if given.
    pub fn new(engine: Engine, socket: U, key_log: Option<KeyLogFile>) -> Self {
        IkeKeys {
            local: engine.config().local_addr,
            engine,
            socket,
            rx: PacketBatch::new(IKE_BATCH, IKE_BUFFER),
            tx: PacketBatch::new(IKE_BATCH, IKE_BUFFER),
            key_log,
            up_since: HashMap::new(),
            peers: BTreeSet::new(),
            failures: BTreeMap::new(),
            last_auth_warning: None,
            started: HashMap::new(),
            handshakes: None,
            leaving: false,
            activity: HashMap::new(),
            next_sample: None,
        }
    }

    /// Samples the per-peer ESP counters of `fwd` (every [`ACTIVITY_SAMPLE`]) and tells the
    /// engine when traffic last went to and came from each peer with SAs, for its on-demand
    /// liveness checks ([`dmvpn_ike::Engine::traffic`]); does nothing when those are off.
    fn sample_activity(&mut self, now: Instant, fwd: &Forwarder<EspInUdp>) {
        if self.engine.config().dpd_on_demand.is_none()
            || self.next_sample.is_some_and(|at| now < at)
        {
            return;
        }
        self.next_sample = Some(now + ACTIVITY_SAMPLE);
        let counters = fwd.peer_counters();
        self.activity.retain(|peer, _| self.peers.contains(peer));
        for &peer in &self.peers {
            let c = counters.get(peer);
            let a = self.activity.entry(peer).or_default();
            if c.tx_packets != a.tx_packets {
                a.tx_packets = c.tx_packets;
                a.sent = Some(now);
            }
            if c.rx_packets != a.rx_packets {
                a.rx_packets = c.rx_packets;
                a.received = Some(now);
            }
            self.engine.traffic(now, peer, a.sent, a.received);
        }
    }

    /// Records the duration of each IKE handshake, from the first IKE_SA_INIT request sent
    /// or received to the first CHILD_SA up (RFC 7296 sections 1.2 and 2.17), in `histogram`.
    #[must_use]
    pub fn with_handshake_histogram(mut self, histogram: Histogram) -> Self {
        self.handshakes = Some(histogram);
        self
    }

    /// Notes the start of a handshake if `message` (sent or received) is an IKE_SA_INIT
    /// request.
    fn note_init(&mut self, now: Instant, message: &[u8]) {
        let Some(spi_i) = init_request_spi(message) else {
            return;
        };
        if self.started.len() >= MAX_TIMED_HANDSHAKES {
            self.started
                .retain(|_, t| now.saturating_duration_since(*t) < HANDSHAKE_STALE);
        }
        if self.started.len() < MAX_TIMED_HANDSHAKES {
            self.started.entry(spi_i).or_insert(now);
        }
    }

    /// Feeds a datagram to the engine, unless the agent is leaving and it asks for a new
    /// IKE SA.
    fn receive(&mut self, now: Instant, local: SocketAddr, from: SocketAddr, payload: &[u8]) {
        if let Some(message) = ike_message(local.port(), payload) {
            if self.leaving && init_request_spi(message).is_some() {
                tracing::debug!(%from, "IKE_SA_INIT refused: shutting down");
                return;
            }
            self.note_init(now, message);
        }
        self.engine.handle_datagram(now, local, from, payload);
    }

    /// Deletes every IKE SA (RFC 7296 section 1.4.1) and removes the forwarder's ESP SAs.
    fn delete_all(&mut self, now: Instant, fwd: &mut Forwarder<EspInUdp>) -> usize {
        let sas = self.engine.ike_sas();
        let peers: BTreeSet<IpAddr> = sas.iter().map(|sa| sa.peer).collect();
        for &peer in &peers {
            self.engine.delete(now, peer);
            // Packets waiting for an SA being set up go with it.
            fwd.drop_pending(peer);
        }
        for peer in core::mem::take(&mut self.peers) {
            fwd.remove_sa(peer);
        }
        self.started.clear();
        sas.len()
    }

    /// The engine (tests, counters).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Drains the engine: datagrams to their socket, events into SAs and logs; then the key
    /// log.
    fn flush(&mut self, now: Instant, fwd: &mut Forwarder<EspInUdp>, out: &mut Output) {
        if self.next_sample.is_none() && self.engine.config().dpd_on_demand.is_some() {
            self.next_sample = Some(now + ACTIVITY_SAMPLE);
        }
        // An event may start an exchange (an NHS found dead is initiated anew): its
        // datagrams go out in the same flush.
        loop {
            while let Some(t) = self.engine.poll_transmit() {
                if let Some(message) = ike_message(t.local.port(), &t.payload) {
                    self.note_init(now, message);
                }
                let buf = if t.local.port() == NAT_T_PORT {
                    out.udp.push_empty()
                } else {
                    self.tx.push_empty()
                };
                if buf.load(&t.payload) {
                    buf.addr = Some(t.remote);
                } else {
                    tracing::warn!(to = %t.remote, len = t.payload.len(), "IKE datagram too large: not sent");
                }
            }
            let Some(event) = self.engine.poll_event() else {
                break;
            };
            self.ike_event(now, event, fwd, out);
        }
        if let Some(log) = &mut self.key_log {
            log.update(&self.engine);
        }
    }

    fn ike_event(
        &mut self,
        now: Instant,
        event: dmvpn_ike::Event,
        fwd: &mut Forwarder<EspInUdp>,
        out: &mut Output,
    ) {
        use dmvpn_ike::Event as E;
        match event {
            E::IkeSaUp {
                peer,
                spi_i,
                spi_r,
                identity,
                remote,
                nat,
                replaces,
                ..
            } => {
                self.up_since.insert((spi_i, spi_r), now);
                tracing::info!(%peer, %remote, %identity, spi_i = %format_args!("{spi_i:016x}"), spi_r = %format_args!("{spi_r:016x}"), nat, rekey = replaces.is_some(), "IKE SA up");
            }
            E::IkeSaDown {
                peer,
                spi_i,
                spi_r,
                reason,
            } => {
                self.up_since.remove(&(spi_i, spi_r));
                tracing::info!(%peer, spi_i = %format_args!("{spi_i:016x}"), reason = ?reason, "IKE SA down");
                // A liveness check found an NHS dead (RFC 7296 section 2.4): reach it over
                // new SAs, and register over them as soon as they are up.
                let nhs = fwd.engine().config().nhs.iter().any(|n| n.nbma == peer);
                if reason == DownReason::PeerDead && nhs && !self.leaving {
                    tracing::warn!(%peer, "NHS failed its liveness check: negotiating new SAs");
                    self.engine.initiate(now, peer);
                    fwd.engine_mut().nhs_path_changed(now, peer);
                }
            }
            E::IkeSaFailed { peer, reason } => {
                let (label, auth) = match reason {
                    FailReason::AuthenticationFailed => ("authentication", true),
                    FailReason::PeerRefused(NotifyType::AuthenticationFailed) => {
                        ("peer_refused_authentication", true)
                    }
                    FailReason::PeerRefused(_) => ("peer_refused", false),
                    FailReason::UnsupportedGroup => ("unsupported_group", false),
                    FailReason::Timeout => ("timeout", false),
                    FailReason::BadResponse => ("bad_response", false),
                };
                *self.failures.entry(label).or_default() += 1;
                let quiet = self
                    .last_auth_warning
                    .is_some_and(|t| now.saturating_duration_since(t) < AUTH_WARNING_INTERVAL);
                if auth && !quiet {
                    self.last_auth_warning = Some(now);
                    tracing::warn!(%peer, reason = label, "IKE authentication failed: check the pre-shared key or the certificates on both routers; no SA");
                } else {
                    tracing::info!(%peer, reason = label, "IKE SA setup failed");
                }
                // The queued packets go; the next one asks for an SA again.
                fwd.drop_pending(peer);
            }
            E::ChildSaUp(up) => self.install(now, &up, fwd, out),
            E::ChildSaDown {
                peer,
                inbound_spi,
                outbound_spi,
                reason,
            } => self.child_down(now, peer, inbound_spi, outbound_spi, reason, fwd),
            E::ChildSaFailed { peer, notify } => {
                tracing::warn!(%peer, notify = ?notify, "CHILD_SA refused");
                fwd.drop_pending(peer);
            }
            E::Dropped { from, reason } => {
                tracing::debug!(%from, reason = reason.as_str(), "IKE datagram dropped");
            }
        }
    }

    /// Installs a CHILD_SA's pair into the forwarder, which sends what waited for it.
    fn install(
        &mut self,
        now: Instant,
        up: &ChildSaUp,
        fwd: &mut Forwarder<EspInUdp>,
        out: &mut Output,
    ) {
        let config = |k: &EspKeys| SaConfig {
            spi: k.spi,
            sequence_numbers: k.sequence_numbers,
            lifetime: Default::default(),
        };
        // The forwarder seals in the mode of the configuration (IpsecSettings::mode).
        if up.mode != self.engine.config().mode {
            tracing::warn!(peer = %up.peer, mode = ?up.mode, "CHILD_SA in the other ESP mode: deleted");
            self.engine.delete_child(now, up.peer, up.inbound.spi);
            return;
        }
        let pair = InboundSa::new(config(&up.inbound), &up.inbound.key, now).and_then(|i| {
            OutboundSa::new(config(&up.outbound), &up.outbound.key, now).map(|o| (i, o))
        });
        let result = match pair {
            Ok((inbound, outbound)) => fwd
                .install_sa(now, up.peer, up.remote, outbound, inbound, out)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => {
                self.peers.insert(up.peer);
                if up.replaces.is_none()
                    && let Some(start) = self.started.remove(&up.ike_spi_i)
                    && let Some(h) = &self.handshakes
                {
                    h.observe(now.saturating_duration_since(start).as_secs_f64());
                }
                tracing::info!(peer = %up.peer, endpoint = %up.remote, inbound_spi = %format_args!("{:#010x}", up.inbound.spi), outbound_spi = %format_args!("{:#010x}", up.outbound.spi), algorithm = up.outbound.algorithm.name(), rekey = up.replaces.is_some(), "IPsec SA installed");
            }
            Err(e) => {
                tracing::warn!(peer = %up.peer, error = %e, "IPsec SA not installed");
                self.engine.delete_child(now, up.peer, up.inbound.spi);
            }
        }
    }

    /// A CHILD_SA went: if it is the pair the forwarder sends on, the peer's SAs go (a
    /// rekeyed or redundant pair was replaced already, its inbound half retires on its own).
    /// When the IKE SA keeps another CHILD_SA whose outbound SA the forwarder dropped for
    /// this one, a rekey brings fresh keys (its sequence numbers cannot restart).
    fn child_down(
        &mut self,
        now: Instant,
        peer: IpAddr,
        inbound_spi: u32,
        outbound_spi: u32,
        reason: DownReason,
        fwd: &mut Forwarder<EspInUdp>,
    ) {
        let current = fwd
            .protection()
            .peer_sas(peer)
            .is_some_and(|(_, out, _)| out == outbound_spi);
        tracing::info!(%peer, inbound_spi = %format_args!("{inbound_spi:#010x}"), reason = ?reason, current, "IPsec SA down");
        if !current {
            return;
        }
        fwd.remove_sa(peer);
        self.peers.remove(&peer);
        let others = self.engine.ike_sas().iter().any(|sa| {
            sa.peer == peer && sa.established && sa.children.iter().any(|(i, _)| *i != inbound_spi)
        });
        if others {
            self.engine.rekey_child(now, peer);
        }
    }
}

impl<U: UdpEndpoint + Send> KeyExchange<EspInUdp> for IkeKeys<U> {
    fn handle_event(
        &mut self,
        now: Instant,
        event: Event,
        fwd: &mut Forwarder<EspInUdp>,
        out: &mut Output,
    ) {
        match event {
            Event::NeedSa { peer } if self.leaving => fwd.drop_pending(peer),
            Event::NeedSa { peer } => {
                tracing::debug!(%peer, "initiating IKE");
                self.engine.initiate(now, peer);
            }
            Event::IkeDatagram { from, datagram } => {
                let local = SocketAddr::new(self.local, NAT_T_PORT);
                self.receive(now, local, from, &datagram);
            }
            // The engine keeps the CHILD_SA lifetimes (rekeys before the ESP SAs expire).
            Event::Sa(e) => tracing::debug!(event = ?e, "ESP SA event"),
            Event::Nhrp(_) => {}
        }
        self.flush(now, fwd, out);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let engine = self.engine.poll_timeout();
        match (engine, self.next_sample.filter(|_| !self.peers.is_empty())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Deletes the IKE SA (its INFORMATIONAL DELETE retransmits on its own, and the late
    /// down events of its CHILD_SAs no longer name the forwarder's pair), drops the ESP pair
    /// at once so nothing more is sealed for a peer that lost its keys, and initiates anew.
    fn peer_unresponsive(
        &mut self,
        now: Instant,
        peer: IpAddr,
        fwd: &mut Forwarder<EspInUdp>,
        out: &mut Output,
    ) {
        let established = self
            .engine
            .ike_sas()
            .iter()
            .any(|sa| sa.peer == peer && sa.established);
        if !established {
            return;
        }
        tracing::warn!(%peer, "no answer over the IPsec SAs: negotiating new ones");
        self.engine.delete(now, peer);
        if self.peers.remove(&peer) {
            fwd.remove_sa(peer);
        }
        self.engine.initiate(now, peer);
        // The registration that found the NHS silent went over the dead SAs: the next one
        // waits for the new SAs, not for its backoff.
        fwd.engine_mut().nhs_path_changed(now, peer);
        self.flush(now, fwd, out);
    }

    fn handle_timeout(&mut self, now: Instant, fwd: &mut Forwarder<EspInUdp>, out: &mut Output) {
        self.sample_activity(now, fwd);
        self.engine.handle_timeout(now);
        self.flush(now, fwd, out);
    }

    fn recv(&mut self) -> impl Future<Output = io::Result<usize>> + Send {
        self.socket.recv_batch(&mut self.rx)
    }

    fn handle_received(&mut self, now: Instant, fwd: &mut Forwarder<EspInUdp>, out: &mut Output) {
        let local = SocketAddr::new(self.local, IKE_PORT);
        let mut rx = core::mem::replace(&mut self.rx, PacketBatch::new(0, 0));
        for buf in rx.bufs() {
            if let Some(from) = buf.addr {
                self.receive(now, local, from, buf.packet());
            }
        }
        rx.clear();
        self.rx = rx;
        self.flush(now, fwd, out);
    }

    fn clear(&mut self, now: Instant, fwd: &mut Forwarder<EspInUdp>, out: &mut Output) {
        let n = self.delete_all(now, fwd);
        tracing::info!(
            ike_sas = n,
            "clear crypto sa: every IKE and IPsec SA deleted"
        );
        self.flush(now, fwd, out);
    }

    fn leave(&mut self, now: Instant, fwd: &mut Forwarder<EspInUdp>, out: &mut Output) {
        self.leaving = true;
        let n = self.delete_all(now, fwd);
        tracing::info!(ike_sas = n, "leaving: IKE SAs deleted");
        self.flush(now, fwd, out);
    }

    fn deleting(&self) -> bool {
        self.engine.counters().ike_sas > 0
    }

    async fn send(&mut self) -> io::Result<()> {
        if self.tx.is_empty() {
            return Ok(());
        }
        let sent = self.socket.send_batch(&self.tx).await;
        self.tx.clear();
        sent.map(drop)
    }

    fn ipsec_sas(&self, fwd: &Forwarder<EspInUdp>) -> Vec<IpsecSaInfo> {
        let esp = fwd.protection();
        let sad = esp.sad();
        self.peers
            .iter()
            .filter_map(|&peer| {
                let (endpoint, out_spi, inbound) = esp.peer_sas(peer)?;
                let mut info = IpsecSaInfo {
                    peer,
                    endpoint,
                    inbound_spi: inbound.last().copied().unwrap_or(0),
                    outbound_spi: out_spi,
                    packets_encaps: sad
                        .outbound(out_spi)
                        .map_or(0, |o| o.counters().pkts_encaps),
                    packets_decaps: 0,
                    replay_drops: 0,
                    auth_failures: 0,
                };
                for sa in inbound.iter().filter_map(|s| sad.inbound(*s)) {
                    let c = sa.counters();
                    info.packets_decaps += c.pkts_decaps;
                    info.replay_drops += c.replay_failed;
                    info.auth_failures += c.verify_failed;
                }
                Some(info)
            })
            .collect()
    }

    fn ike_sas(&self, now: Instant) -> Vec<IkeSaInfo> {
        let mut sas: Vec<IkeSaInfo> = self
            .engine
            .ike_sas()
            .into_iter()
            .map(|sa| {
                let since = self.up_since.get(&(sa.spi_i, sa.spi_r)).copied();
                let port = if sa.udp_encap { NAT_T_PORT } else { IKE_PORT };
                IkeSaInfo {
                    peer: SocketAddr::new(sa.peer, port),
                    spi_i: sa.spi_i,
                    spi_r: sa.spi_r,
                    state: if sa.deleting {
                        IkeSaState::Deleting
                    } else if sa.established {
                        IkeSaState::Established
                    } else {
                        IkeSaState::Connecting
                    },
                    uptime: since.map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
                }
            })
            .collect();
        sas.sort_by_key(|s| (s.peer, s.spi_i));
        sas
    }

    fn ike_failures(&self) -> BTreeMap<&'static str, u64> {
        self.failures.clone()
    }
}

/// No key exchange: GRE-in-UDP, for tests and labs only.
#[derive(Debug, Default)]
pub struct Unprotected;

impl KeyExchange<GreInUdp> for Unprotected {
    fn handle_event(
        &mut self,
        _now: Instant,
        event: Event,
        fwd: &mut Forwarder<GreInUdp>,
        _out: &mut Output,
    ) {
        // GRE-in-UDP is always ready and opens no IKE datagram; should a peer's packets be
        // held all the same, nothing will key them, so they go.
        if let Event::NeedSa { peer } = event {
            tracing::warn!(%peer, "packets wait for an SA, but IPsec is off: dropped");
            fwd.drop_pending(peer);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant, _fwd: &mut Forwarder<GreInUdp>, _out: &mut Output) {
    }

    fn ipsec_sas(&self, _fwd: &Forwarder<GreInUdp>) -> Vec<IpsecSaInfo> {
        Vec::new()
    }

    fn ike_sas(&self, _now: Instant) -> Vec<IkeSaInfo> {
        Vec::new()
    }
}
