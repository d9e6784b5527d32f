//! `bascule crd`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::exit;
use crate::api;

#[derive(clap::Args)]
pub struct CrdArgs {
    /// Write `<name>.yaml` files into this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub fn run(args: CrdArgs) -> ExitCode {
    let crds = api::crds();
    let Some(dir) = args.out_dir else {
        for crd in &crds {
            print!("{}", api::crd_yaml(crd));
        }
        return ExitCode::SUCCESS;
    };
    for crd in &crds {
        let path = dir.join(api::crd_file_name(crd));
        if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, api::crd_yaml(crd)))
        {
            eprintln!("bascule crd: cannot write {}: {e}", path.display());
            return ExitCode::from(exit::BAD_INPUT);
        }
        eprintln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
