//! Round-trip checks shared by the cargo-fuzz targets and by the seed replay test: each parses
//! hostile bytes, and whatever parses must emit and parse again to the same representation.
//!
//! Run a target (nightly features through `RUSTC_BOOTSTRAP=1` on a stable toolchain):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run nhrp corpus/nhrp seeds/nhrp -- -max_total_time=60`
//! from `node-agent/fuzz/`.

pub mod dataplane;
pub mod ikev2;
pub mod nhrp;
