//! `dmvpnctl`: the operator's tool for a kube-dmvpn node, in the spirit of Cisco's `show` and
//! `debug` commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use dmvpn_agent::admin::{self, Command as AdminRequest, Request};
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
    /// The agent's admin socket (config `admin.socket`).
    #[arg(long, global = true, default_value = dmvpn_crds::DEFAULT_ADMIN_SOCKET)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Human-readable, like IOS's `show` tables and `debug nhrp packet`.
    Text,
    /// One JSON document for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the agent's state, as IOS does: `dmvpn [detail]`, `ip nhrp [detail]`,
    /// `ip nhrp traffic`, `crypto session`, `crypto ikev2 sa`, `crypto ipsec sa`.
    Show {
        /// The words after `show`.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Clear state in the agent: `ip nhrp` (dynamic NHRP entries) or `crypto sa` (every IKE
    /// and ESP SA).
    Clear {
        /// The words after `clear`.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Decode a pcap or pcapng capture of underlay (IKE, ESP-in-UDP, GRE, GRE-in-UDP) or
    /// tunnel traffic, layer by layer.
    Pcap {
        /// The capture file.
        file: PathBuf,
        /// Re-emit every understood layer and exit non-zero if any differs from the capture.
        #[arg(long)]
        check_roundtrip: bool,
        /// Decrypt ESP and IKE with the keys of this key log (written by `dmvpn-agent run
        /// --key-log FILE.json`).
        #[arg(long, value_name = "FILE.json")]
        key_log: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Show { words } => ask(&cli.socket, cli.output, "show", &words),
        Command::Clear { words } => ask(&cli.socket, cli.output, "clear", &words),
        Command::Pcap {
            file,
            check_roundtrip,
            key_log,
        } => {
            let keys = match &key_log {
                Some(path) => pcap::KeyLog::read(path)?,
                None => pcap::KeyLog::default(),
            };
            let raw = pcap::read_capture(&file)?;
            let frames: Vec<_> = raw
                .iter()
                .enumerate()
                .map(|(i, f)| pcap::decode_frame_with_keys(i + 1, f, &keys))
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

/// Sends `verb words...` to the agent and prints the answer in `output`.
fn ask(
    socket: &std::path::Path,
    output: Output,
    verb: &str,
    words: &[String],
) -> anyhow::Result<ExitCode> {
    let command = format!("{verb} {}", words.join(" "));
    // Refuse a typo here, with the list of commands, before reaching for the socket.
    let parsed: AdminRequest = command.parse()?;
    let request = Request {
        command: parsed.to_string(),
        detail: false,
    };
    let response = match admin::request(socket, &request) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dmvpnctl: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(error) = response.error.filter(|_| !response.ok) {
        eprintln!("dmvpnctl: the agent refused `{command}`: {error}");
        return Ok(ExitCode::FAILURE);
    }
    match output {
        Output::Text => print!("{}", response.text),
        Output::Json if response.json.is_null() => {}
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&response.json).context("serializing the answer")?
        ),
    }
    Ok(ExitCode::SUCCESS)
}
