//! `dmvpn-agent`: the kube-dmvpn DMVPN router daemon (see `dmvpn_agent::agent`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use dmvpn_agent::agent::{RunOptions, run};

/// The kube-dmvpn agent: a userspace DMVPN router on a TUN device.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the router until SIGTERM or SIGINT.
    Run {
        /// The configuration (a DmvpnNode spec in YAML).
        #[arg(long, required_unless_present = "kube", conflicts_with = "kube")]
        config: Option<PathBuf>,
        /// Runs under Kubernetes: the gateway of this node's DmvpnNode (`$NODE_NAME`), or a
        /// route agent; Secrets come from `$POD_NAMESPACE`.
        #[arg(long)]
        kube: bool,
        /// Serves `/healthz` and `/readyz` here (with `--kube`).
        #[arg(long, requires = "kube")]
        health_listen: Option<std::net::SocketAddr>,
        /// Writes the IKE/ESP keys here as JSON, for decrypting captures in tests.
        #[arg(long)]
        key_log: Option<PathBuf>,
        /// The log format; the level comes from DMVPN_LOG (default `info`).
        #[arg(long, value_enum, default_value_t = LogFormat::Human)]
        log_format: LogFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("DMVPN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let Command::Run {
        config,
        kube,
        health_listen,
        key_log,
        log_format,
    } = Cli::parse().command;
    init_logs(log_format);
    let config = match (kube, config) {
        (true, _) => {
            let options = dmvpn_agent::kube::KubeOptions {
                health_listen,
                key_log,
            };
            return match dmvpn_agent::kube::run(&options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dmvpn-agent: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        (false, Some(config)) => config,
        // clap requires one of them.
        (false, None) => return ExitCode::from(2),
    };
    match run(&RunOptions { config, key_log }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dmvpn-agent: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
