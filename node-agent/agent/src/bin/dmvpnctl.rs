//! `dmvpnctl`: the operator's tool for a kube-dmvpn node, in the spirit of Cisco's `show` and
//! `debug` commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use dmvpn_agent::pcap;

#[derive(Debug, Parser)]
#[command(
    name = "dmvpnctl",
    version,
    about = "Inspect and operate a kube-dmvpn node"
)]
struct Cli {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text, global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Human-readable, like `debug nhrp packet`.
    Text,
    /// One JSON document for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a pcap or pcapng capture of underlay (IKE, ESP-in-UDP, GRE, GRE-in-UDP) or
    /// tunnel traffic, layer by layer.
    Pcap {
        /// The capture file.
        file: PathBuf,
        /// Re-emit every understood layer and exit non-zero if any differs from the capture.
        #[arg(long)]
        check_roundtrip: bool,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Pcap {
            file,
            check_roundtrip,
        } => {
            let raw = pcap::read_capture(&file)?;
            let frames: Vec<_> = raw
                .iter()
                .enumerate()
                .map(|(i, f)| pcap::decode_frame(i + 1, f))
                .collect();
            let mismatches: Vec<usize> = frames
                .iter()
                .filter(|f| f.has_mismatch())
                .map(|f| f.number)
                .collect();
            match cli.output {
                Output::Json => {
                    let doc = serde_json::json!({ "file": file, "frames": frames, "roundtrip_mismatches": mismatches });
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&doc).context("serializing frames")?
                    );
                }
                Output::Text => {
                    print!("{}", pcap::render_text(&frames, check_roundtrip));
                    if check_roundtrip {
                        println!(
                            "{} frames, {} with a round-trip mismatch{}",
                            frames.len(),
                            mismatches.len(),
                            if mismatches.is_empty() {
                                String::new()
                            } else {
                                format!(": {mismatches:?}")
                            }
                        );
                    }
                }
            }
            if check_roundtrip && !mismatches.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
