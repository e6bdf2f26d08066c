//! Root and network namespaces for the tests that use the real OS: whether the test runs as
//! root, `ip` commands that must succeed, and a namespace deleted however the test ends.

use std::process::Command;

/// Whether this process runs as root (real UID 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// Runs `ip` with `args`; panics unless it succeeds.
pub fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?}");
}

/// Deletes the namespace however the test ends.
pub struct Netns(pub String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
