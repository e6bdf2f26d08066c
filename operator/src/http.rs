//! The operator's HTTP listener: `/metrics` (Prometheus text format), `/healthz` and
//! `/readyz`. A request is read up to its header's end (at most 4 KiB) and answered with one
//! response; nothing else of HTTP/1.1 is needed by kubelet probes and Prometheus.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// The longest request header read.
const MAX_REQUEST: usize = 4096;

/// Serves until the listener fails. `ready` answers `/readyz`.
///
/// # Errors
/// When accepting fails.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_REQUEST];
            let mut len = 0;
            while len < MAX_REQUEST && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
            }
            let response = respond(&buf[..len], &metrics, ready.load(Ordering::Relaxed));
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The response to a raw request.
fn respond(request: &[u8], metrics: &Metrics, ready: bool) -> String {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, body, kind) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", metrics.render(), "text/plain; version=0.0.4"),
        (b"GET", b"/healthz") => ("200 OK", "ok\n".to_owned(), "text/plain"),
        (b"GET", b"/readyz") if ready => ("200 OK", "ok\n".to_owned(), "text/plain"),
        (b"GET", b"/readyz") => (
            "503 Service Unavailable",
            "not ready\n".to_owned(),
            "text/plain",
        ),
        (b"GET", _) => ("404 Not Found", "not found\n".to_owned(), "text/plain"),
        _ => (
            "405 Method Not Allowed",
            "GET only\n".to_owned(),
            "text/plain",
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::new().unwrap();
        m.reconciles.with_label_values(&["DmvpnHub"]).inc();
        let r = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &m, true);
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
        assert!(
            r.contains("dmvpn_operator_reconciles_total{kind=\"DmvpnHub\"} 1"),
            "{r}"
        );
        assert!(respond(b"GET /healthz HTTP/1.1\r\n\r\n", &m, false).starts_with("HTTP/1.1 200"));
        assert!(respond(b"GET /readyz HTTP/1.1\r\n\r\n", &m, false).starts_with("HTTP/1.1 503"));
        assert!(respond(b"GET /readyz HTTP/1.1\r\n\r\n", &m, true).starts_with("HTTP/1.1 200"));
        assert!(respond(b"GET /x HTTP/1.1\r\n\r\n", &m, true).starts_with("HTTP/1.1 404"));
        assert!(respond(b"POST /metrics HTTP/1.1\r\n\r\n", &m, true).starts_with("HTTP/1.1 405"));
        assert!(respond(b"\xff\xfe", &m, true).starts_with("HTTP/1.1 405"));
    }
}
