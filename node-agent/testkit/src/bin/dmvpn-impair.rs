//! Lab helper: a transparent impairing relay between two TAP devices that drops a seeded
//! share of the IP packets each way (no netem in the lab's kernel); usage and design in
//! [`dmvpn_testkit::impair`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dmvpn_testkit::impair::main_with_args(&args)
}
