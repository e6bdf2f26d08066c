//! Round-trip checks shared by the cargo-fuzz targets and by the seed replay test: each parses
//! hostile bytes, and whatever parses must emit and parse again to the same representation.
//!
//! Run a target from the repository root (`RUSTC_BOOTSTRAP=1` lets a stable toolchain take
//! the sanitizer flags; the first corpus folder collects new inputs, the second is the seeds):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir node-agent/fuzz nhrp
//! node-agent/fuzz/corpus/nhrp node-agent/fuzz/seeds/nhrp -- -max_total_time=60`

pub mod dataplane;
pub mod esp_sa;
pub mod forwarder;
pub mod ike_auth_data;
pub mod ike_engine;
pub mod ike_fragment;
pub mod ikev2;
pub mod nhrp;
pub mod nhrp_engine;
