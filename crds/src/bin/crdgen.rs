//! Writes the CRDs of kube-dmvpn as YAML into each `--out` folder:
//! `cargo run -p dmvpn-crds --bin crdgen -- --out crds --out charts/kube-dmvpn/crds`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut outs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--out", Some(dir)) => outs.push(PathBuf::from(dir)),
            _ => {
                eprintln!("usage: crdgen --out DIR [--out DIR]...");
                return ExitCode::from(2);
            }
        }
    }
    if outs.is_empty() {
        eprintln!("usage: crdgen --out DIR [--out DIR]...");
        return ExitCode::from(2);
    }
    let files = match dmvpn_crds::crd_files() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("crdgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    for dir in &outs {
        for (name, yaml) in &files {
            let path = dir.join(name);
            let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, yaml));
            if let Err(e) = written {
                eprintln!("crdgen: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
        }
    }
    ExitCode::SUCCESS
}
