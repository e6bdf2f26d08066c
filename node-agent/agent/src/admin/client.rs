//! `dmvpnctl`'s side of the admin socket: one request, one response.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{Request, Response};

/// How long `dmvpnctl` waits for the agent's answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the path.
    #[error("cannot reach the agent at {}: is dmvpn-agent running? (--socket to choose another)", .0.display())]
    Unreachable(PathBuf),
    /// The socket exists but this user may not use it.
    #[error("cannot reach the agent at {}: permission denied (the admin socket is the agent's user's only: run as root)", .0.display())]
    PermissionDenied(PathBuf),
    /// Talking to the agent failed midway.
    #[error("talking to the agent at {}: {}", .0.display(), .1)]
    Io(PathBuf, #[source] io::Error),
    /// The agent's answer is not a response.
    #[error("the agent at {} answered something unreadable: {}", .0.display(), .1)]
    Protocol(PathBuf, #[source] serde_json::Error),
}

/// Sends `request` to the agent at `socket` and reads its response.
///
/// # Errors
/// [`ClientError`]: no agent, no permission, an I/O error or an unreadable answer.
pub fn request(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    let path = || socket.to_owned();
    let stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ClientError::Unreachable(path())
        }
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(path()),
        _ => ClientError::Io(path(), e),
    })?;
    let io_err = |e| ClientError::Io(path(), e);
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io_err)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io_err)?;
    let mut line = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(path(), e))?;
    line.push(b'\n');
    (&stream).write_all(&line).map_err(io_err)?;
    let mut answer = Vec::new();
    BufReader::new(&stream)
        .read_until(b'\n', &mut answer)
        .map_err(io_err)?;
    serde_json::from_slice(&answer).map_err(|e| ClientError::Protocol(path(), e))
}
