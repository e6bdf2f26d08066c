//! The lab's GRE probe sender and receiver (RFC 2784, raw IPPROTO_GRE socket), built with this
//! crate so that its tests can run it inside strongSwan's namespace; usage in
//! [`dmvpn_testkit::lab_gre`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dmvpn_testkit::lab_gre::main_with_args(&args)
}
