//! The admin socket: `dmvpnctl show ...` and `clear ...` against a running agent, over a
//! Unix socket (config `admin.socket`), in the place of IOS's exec prompt.
//!
//! The agent runs [`serve`] (or [`AdminServer::bind`] then [`AdminServer::run`]) with the
//! driver's snapshot channel and a command channel; `dmvpnctl` calls [`request`]. The wire
//! format is in [`protocol`].

mod client;
pub mod protocol;
mod server;

pub use client::{ClientError, request};
pub use protocol::{AdminCommand, Command, Request, Response, UnknownCommand};
pub use server::{AdminServer, serve};

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixStream;
    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::show::testdata::hub;

    /// A fresh folder for one test's socket.
    fn folder(test: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dmvpn-admin-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Serves a hub snapshot at `path`; returns the receiver of the clear commands.
    fn start(path: &Path) -> mpsc::Receiver<AdminCommand> {
        let server = AdminServer::bind(path).unwrap();
        let (_tx, rx) = watch::channel(Arc::new(hub()));
        let (ctx, crx) = mpsc::channel(4);
        tokio::spawn(async move {
            let _keep = _tx;
            server.run(rx, ctx).await
        });
        crx
    }

    async fn exchange(stream: &mut BufReader<UnixStream>, line: &[u8]) -> Response {
        stream.get_mut().write_all(line).await.unwrap();
        let mut answer = String::new();
        stream.read_line(&mut answer).await.unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    #[tokio::test]
    async fn answers_shows_and_hands_clears_to_the_driver() {
        let dir = folder("answers");
        let path = dir.join("agent.sock");
        let mut clears = start(&path);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let p = path.clone();
        let r = tokio::task::spawn_blocking(move || {
            request(
                &p,
                &Request {
                    command: "show crypto ipsec sa".into(),
                    detail: false,
                },
            )
        })
        .await
        .unwrap()
        .unwrap();
        assert!(r.ok);
        assert!(
            r.text
                .contains("current outbound spi: 0xC32C6D83(3274468739)")
        );
        assert_eq!(r.json["sas"][0]["outboundSpi"], "0xc32c6d83");

        // Several requests on one connection, bad ones answered and survived.
        let mut s = BufReader::new(UnixStream::connect(&path).await.unwrap());
        let r = exchange(&mut s, b"{\"command\":\"show dmvpn\",\"detail\":true}\n").await;
        assert!(r.ok && r.text.contains("Target Network"), "{r:?}");
        let r = exchange(&mut s, b"not json\n").await;
        assert!(!r.ok && r.error.unwrap().contains("not a request"));
        let r = exchange(&mut s, b"{\"command\":\"show bgp\"}\n").await;
        assert!(!r.ok && r.error.unwrap().contains("unknown command `show bgp`"));
        let r = exchange(&mut s, b"{\"command\":\"clear crypto sa\"}\n").await;
        assert!(r.ok && r.text.is_empty() && r.json.is_null());
        assert_eq!(clears.recv().await, Some(AdminCommand::ClearCryptoSa));
        let r = exchange(&mut s, b"{\"command\":\"clear ip nhrp\"}\n").await;
        assert!(r.ok);
        assert_eq!(clears.recv().await, Some(AdminCommand::ClearIpNhrp));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_overlong_request_is_refused_and_the_connection_closed() {
        let dir = folder("overlong");
        let path = dir.join("agent.sock");
        let _clears = start(&path);
        let mut s = BufReader::new(UnixStream::connect(&path).await.unwrap());
        let mut line = vec![b'x'; protocol::MAX_REQUEST_LEN + 10];
        line.push(b'\n');
        let r = exchange(&mut s, &line).await;
        assert!(!r.ok && r.error.unwrap().contains("longer than 4096"));
        let mut rest = String::new();
        assert_eq!(s.read_line(&mut rest).await.unwrap(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn stale_sockets_are_replaced_and_live_ones_or_files_kept() {
        let dir = folder("stale");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.sock");
        // A socket file nobody listens on: what a killed agent leaves.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = AdminServer::bind(&path).unwrap();
        // The first agent answers: a second one must not steal its socket.
        let e = AdminServer::bind(&path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains("another agent answers"), "{e}");
        drop(live);
        assert!(!path.exists(), "dropping the server removes its socket");
        std::fs::write(&path, b"not a socket").unwrap();
        let e = AdminServer::bind(&path).unwrap_err();
        assert!(e.to_string().contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
        // A socket path under a regular file: `serve` fails at once instead of serving.
        let (_tx, rx) = watch::channel(Arc::new(hub()));
        let (ctx, _crx) = mpsc::channel(1);
        let e = serve(path.join("agent.sock"), rx, ctx).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_socket_says_how_to_fix_it() {
        let path = folder("missing").join("agent.sock");
        let e = request(
            &path,
            &Request {
                command: "show dmvpn".into(),
                detail: false,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot reach the agent at {}: is dmvpn-agent running? (--socket to choose another)",
                path.display()
            )
        );
    }
}
