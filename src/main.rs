//! The `portbinder` command: parse, dispatch, report errors with their causes and exit
//! with the documented code.

use std::process::ExitCode;

use clap::Parser;
use portbinder::cli::{Cli, Command};
use portbinder::config::Trust;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(mut args) => {
            // The file is trusted if only root or the user the daemon starts as could change
            // it, also when it is read again after the drop (reload), from / (the daemon's
            // working directory once the file is read).
            let owner = nix::unistd::Uid::effective();
            args.config = args.config.map(|p| std::path::absolute(&p).unwrap_or(p));
            portbinder::serve::run(|| args.load(Trust::RootOr(owner))).map_err(|e| {
                let code = e.exit_code();
                (anyhow::Error::new(e), code)
            })
        }
        Command::Check(args) => match args.load(Trust::Any) {
            Ok(config) => {
                let n = config.bindings.len();
                let plural = if n == 1 { "" } else { "s" };
                println!("portbinder: {}: ok ({n} binding{plural})", config.origin);
                Ok(())
            }
            Err(e) => Err((anyhow::Error::new(e), 3)),
        },
        Command::Exec(args) => {
            let request = portbinder::caller::exec::Request {
                names: args.names,
                socket_dir: args.socket_dir,
                preload: args.preload.then(|| {
                    args.preload_lib
                        .unwrap_or_else(portbinder::caller::exec::find_shim)
                }),
                any_address: args.preload_any_address,
                command: args.command,
            };
            // SAFETY: `portbinder` never starts a thread; this is its only one.
            let error = unsafe { portbinder::caller::exec::exec(&request) };
            let code = error.exit_code();
            Err((anyhow::Error::new(error), code))
        }
        Command::List(args) => {
            let caller = portbinder::caller::list::Caller::current();
            match portbinder::caller::list::list(&args.socket_dir, &caller) {
                Ok(entries) if entries.is_empty() => {
                    println!("no bindings in {}", args.socket_dir.display());
                    Ok(())
                }
                Ok(entries) => {
                    print!("{}", portbinder::caller::list::render(&entries));
                    Ok(())
                }
                Err(e) => Err((
                    anyhow::Error::new(e).context(format!(
                        "cannot list {} (is portbinder running? is --socket-dir right?)",
                        args.socket_dir.display()
                    )),
                    7,
                )),
            }
        }
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
