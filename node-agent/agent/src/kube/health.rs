//! The agent's health endpoints under Kubernetes (`--health-listen`): `/healthz` answers 200
//! while the process serves, `/readyz` 200 once the agent is ready (a gateway: router up and
//! its status written; a route agent: the initial list of DmvpnNodes done), 503 before. A
//! minimal HTTP/1.1 responder (RFC 9112): one request per connection.

use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The longest a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a request read: probes send a line and a few headers.
const MAX_REQUEST: usize = 2048;

/// Whether the agent is ready, shared by the mode loops and the health server.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    /// Sets readiness.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Whether the agent is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The answer to a request line's path: status line and body.
pub fn respond(path: &str, ready: bool) -> (&'static str, &'static str) {
    match path {
        "/healthz" => ("200 OK", "ok\n"),
        "/readyz" if ready => ("200 OK", "ready\n"),
        "/readyz" => ("503 Service Unavailable", "not ready\n"),
        _ => ("404 Not Found", "not found\n"),
    }
}

/// The health listener.
#[derive(Debug)]
pub struct HealthServer {
    listener: TcpListener,
}

impl HealthServer {
    /// Binds `listen`.
    ///
    /// # Errors
    /// The address is in use or not ours.
    pub async fn bind(listen: SocketAddr) -> io::Result<Self> {
        Ok(HealthServer {
            listener: TcpListener::bind(listen).await?,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves probes until the task is dropped.
    ///
    /// # Errors
    /// Accepting failed for good.
    pub async fn run(self, readiness: Arc<Readiness>) -> io::Result<()> {
        loop {
            let (mut stream, _) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) if crate::accept_error_is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let readiness = Arc::clone(&readiness);
            tokio::spawn(async move {
                let mut buf = vec![0u8; MAX_REQUEST];
                let mut len = 0;
                let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
                    while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => len += n,
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let head = String::from_utf8_lossy(&buf[..len]);
                let mut words = head.split_whitespace();
                let path = match (words.next(), words.next()) {
                    (Some("GET" | "HEAD"), Some(p)) => p,
                    _ => "",
                };
                let (status, body) = respond(path, readiness.get());
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_is_always_ok_and_readyz_follows_readiness() {
        assert_eq!(respond("/healthz", false).0, "200 OK");
        assert_eq!(respond("/readyz", false).0, "503 Service Unavailable");
        assert_eq!(respond("/readyz", true).0, "200 OK");
        assert_eq!(respond("/metrics", true).0, "404 Not Found");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_server_answers_probes_over_tcp() {
        let server = HealthServer::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let readiness = Arc::new(Readiness::default());
        tokio::spawn(server.run(Arc::clone(&readiness)));
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        readiness.set(true);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200 OK"));
    }
}
