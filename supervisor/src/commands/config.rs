//! `stackctl config [--explain]`: the effective configuration, or where each value came from.

use std::process::ExitCode;

use super::load;
use crate::cli::ConfigArgs;

/// `stackctl config [--explain]`.
pub fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.config)?;
    if args.explain {
        for item in loaded.explain() {
            println!("{} = {}  # {}", item.key, item.value, item.origin);
        }
    } else {
        print!("{}", loaded.to_toml());
    }
    Ok(ExitCode::SUCCESS)
}
