//! Lab helper that sends and receives GRE probes (RFC 2784) on a raw IPPROTO_GRE socket, so
//! that traffic matching GRE traffic selectors flows through a strongSwan lab; usage in
//! [`dmvpn_testkit::lab_gre`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dmvpn_testkit::lab_gre::main_with_args(&args)
}
