//! The `texaug` command line; everything lives in the library (`lib.rs`).

fn main() -> std::process::ExitCode {
    texaug_pipeline::cli_main()
}
