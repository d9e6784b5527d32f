//! The `bascule` command line; everything is in [`bascule::cli`].

fn main() -> std::process::ExitCode {
    bascule::cli::main()
}
