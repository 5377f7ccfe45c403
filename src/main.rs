//! The `portbinder` command: parse, dispatch, report errors with their causes and exit
//! with the documented code.

use std::process::ExitCode;

use clap::Parser;
use portbinder::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => portbinder::serve::run(|| args.load()).map_err(|e| {
            let code = e.exit_code();
            (anyhow::Error::new(e), code)
        }),
        Command::Check(args) => match args.load() {
            Ok(config) => {
                let n = config.bindings.len();
                let plural = if n == 1 { "" } else { "s" };
                println!("portbinder: {}: ok ({n} binding{plural})", config.origin);
                Ok(())
            }
            Err(e) => Err((anyhow::Error::new(e), 3)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((error, code)) => {
            eprintln!("portbinder: error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(code as u8)
        }
    }
}
