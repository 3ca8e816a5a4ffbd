//! `rdb`: the ReedBase command line. Thin: parse arguments, run the command,
//! map errors to exit codes (docs/CLI.md).

mod cli;

fn main() {
    std::process::exit(cli::main());
}
