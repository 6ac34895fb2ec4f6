//! The heatcheck command line: parse, dispatch, exit code.

use std::process::ExitCode;

use clap::Parser;

use heatcheck::cli::Cli;
use heatcheck::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            let code = if e.use_stderr() {
                exit::INVALID
            } else {
                exit::SUCCESS
            };
            return ExitCode::from(code as u8);
        }
    };
    heatcheck::commands::init_logging(&cli.log);
    let code = match cli.command.dispatch() {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            e.print();
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}
