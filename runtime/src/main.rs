//! `command-center`: see `command-center --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    runtime::cli::main()
}
