//! The operator's Prometheus metrics: reconciles, failures by reason, site problems by
//! reason, and reconcile durations.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The operator's metrics, registered in one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The registry `/metrics` serves.
    pub registry: Registry,
    /// `dmvpn_operator_reconciles_total{kind}`.
    pub reconciles: IntCounterVec,
    /// `dmvpn_operator_reconcile_failures_total{kind, reason}`: API errors.
    pub failures: IntCounterVec,
    /// `dmvpn_operator_site_problems_total{kind, reason}`: sites that cannot be planned.
    pub problems: IntCounterVec,
    /// `dmvpn_operator_reconcile_duration_seconds{kind}`.
    pub duration: HistogramVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    ///
    /// # Errors
    /// When a name is registered twice, which the fixed names rule out.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new("dmvpn_operator_reconciles_total", "Reconciles started."),
            &["kind"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "dmvpn_operator_reconcile_failures_total",
                "Reconciles that failed, by error.",
            ),
            &["kind", "reason"],
        )?;
        let problems = IntCounterVec::new(
            Opts::new(
                "dmvpn_operator_site_problems_total",
                "Reconciles that found a site they cannot plan, by condition reason.",
            ),
            &["kind", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "dmvpn_operator_reconcile_duration_seconds",
                "Time a reconcile takes.",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["kind"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(problems.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Metrics {
            registry,
            reconciles,
            failures,
            problems,
            duration,
        })
    }

    /// The text exposition format of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // The text encoder only fails on a broken writer; a String never is.
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}
