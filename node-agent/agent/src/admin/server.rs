//! The agent's side of the admin socket: answers `show` commands from the latest snapshot and
//! hands `clear` commands to the driver.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, watch};

use super::protocol::{AdminCommand, Command, MAX_REQUEST_LEN, Request, Response};
use crate::show;
use crate::snapshot::RouterSnapshot;

/// Connections served at once; more wait for a slot.
const MAX_CONNECTIONS: usize = 8;
/// A connection idle this long between requests is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The socket's mode: the agent's user only (root, like IOS's privileged exec).
const SOCKET_MODE: u32 = 0o600;

/// A bound admin socket. Dropping it removes the socket file.
#[derive(Debug)]
pub struct AdminServer {
    listener: UnixListener,
    _file: SocketFile,
}

/// Removes the socket file when dropped (the agent stopping, or its task aborted).
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes a stale socket left by an agent that died, refusing to remove a live one or
/// anything that is not a socket.
fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket: remove it or choose another admin.socket",
                path.display()
            ),
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another agent answers on {}: stop it or choose another admin.socket",
                path.display()
            ),
        ));
    }
    std::fs::remove_file(path)
}

impl AdminServer {
    /// Binds the socket at `path` with mode 0600, creating its folder and removing a stale
    /// socket. The socket is bound under a temporary name and renamed into place once its
    /// mode is set, so nobody can connect before. Must be called within a tokio runtime.
    ///
    /// # Errors
    /// The folder cannot be created, a live agent or a non-socket file holds `path`, or
    /// binding fails.
    pub fn bind(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        remove_stale(path)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp)?;
        let tmp_file = SocketFile(tmp);
        std::fs::set_permissions(&tmp_file.0, std::fs::Permissions::from_mode(SOCKET_MODE))?;
        std::fs::rename(&tmp_file.0, path)?;
        std::mem::forget(tmp_file);
        Ok(AdminServer {
            listener,
            _file: SocketFile(path.to_owned()),
        })
    }

    /// Serves connections until the task is dropped: each request line is answered from the
    /// latest `snapshot`, and `clear` commands go to `commands`.
    ///
    /// # Errors
    /// Accepting a connection failed in a way that will not go away (file descriptors
    /// exhausted are waited out).
    pub async fn run(
        self,
        snapshot: watch::Receiver<Arc<RouterSnapshot>>,
        commands: mpsc::Sender<AdminCommand>,
    ) -> io::Result<()> {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = Arc::clone(&slots)
                .acquire_owned()
                .await
                .map_err(io::Error::other)?;
            let stream = match self.listener.accept().await {
                Ok((s, _)) => s,
                Err(e) if crate::accept_error_is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let snapshot = snapshot.clone();
            let commands = commands.clone();
            tokio::spawn(async move {
                // A client that misbehaves only loses its own connection.
                let _ = connection(stream, snapshot, commands).await;
                drop(permit);
            });
        }
    }
}

/// Binds `path` and serves it: [`AdminServer::bind`] then [`AdminServer::run`]. The future
/// owns everything it uses, so the agent can `tokio::spawn` it.
///
/// # Errors
/// As [`AdminServer::bind`] and [`AdminServer::run`].
pub async fn serve(
    path: PathBuf,
    snapshot: watch::Receiver<Arc<RouterSnapshot>>,
    commands: mpsc::Sender<AdminCommand>,
) -> io::Result<()> {
    AdminServer::bind(&path)?.run(snapshot, commands).await
}

async fn connection(
    stream: UnixStream,
    snapshot: watch::Receiver<Arc<RouterSnapshot>>,
    commands: mpsc::Sender<AdminCommand>,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let limit = (MAX_REQUEST_LEN + 1) as u64;
        let n = tokio::time::timeout(
            IDLE_TIMEOUT,
            (&mut reader).take(limit).read_until(b'\n', &mut line),
        )
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Ok(());
        }
        let too_long = line.last() != Some(&b'\n') && n > MAX_REQUEST_LEN;
        let response = if too_long {
            Response::error(format!("request longer than {MAX_REQUEST_LEN} bytes"))
        } else {
            answer(&line, &snapshot, &commands).await
        };
        let mut bytes = serde_json::to_vec(&response).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write.write_all(&bytes).await?;
        if too_long {
            return Ok(());
        }
    }
}

/// The response to one request line.
async fn answer(
    line: &[u8],
    snapshot: &watch::Receiver<Arc<RouterSnapshot>>,
    commands: &mpsc::Sender<AdminCommand>,
) -> Response {
    let request: Request = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => {
            return Response::error(format!(
                "not a request ({e}): send {{\"command\":\"show dmvpn\",\"detail\":false}} and a newline"
            ));
        }
    };
    match Command::parse(&request) {
        Err(e) => Response::error(e.to_string()),
        Ok(Command::Show(which)) => {
            let snap = Arc::clone(&snapshot.borrow());
            let r = show::render(&snap, which);
            Response {
                ok: true,
                text: r.text,
                json: r.json,
                error: None,
            }
        }
        Ok(Command::Clear(c)) => match commands.send(c).await {
            Ok(()) => Response {
                ok: true,
                text: String::new(),
                json: serde_json::Value::Null,
                error: None,
            },
            Err(_) => Response::error("the agent is shutting down"),
        },
    }
}
