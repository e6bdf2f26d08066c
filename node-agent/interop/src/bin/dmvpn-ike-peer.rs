//! `dmvpn-ike-peer`: the dmvpn-ike engine on UDP 500 and 4500 of one address, with a minimal
//! ESP/GRE path, for interop tests against strongSwan (RFC 7296, RFC 4303, RFC 3948). Runs
//! until SIGTERM, SIGINT or `--run-for`, then prints its summary as one JSON line.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use dmvpn_interop::cli::Args;
use signal_hook::consts::{SIGINT, SIGTERM};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGTERM, Arc::clone(&stop))?;
    signal_hook::flag::register(SIGINT, Arc::clone(&stop))?;
    let summary = dmvpn_interop::peer::run(&args, &stop)?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
