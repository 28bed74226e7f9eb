//! `brenier`: the command-line edge of the runtime. A thin layer: argument parsing, files in and
//! out, progress bars; everything else is in the `brenier` and `brenier-export` libraries.

mod cmd;
mod images;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "brenier",
    version,
    about = "OT-accelerated diffusion translation on edge devices (OT-ALD, DDIB, DPM-OT)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Export(cmd::export::Args),
    Inspect(cmd::inspect::Args),
    Translate(cmd::translate::Args),
    Generate(cmd::generate::Args),
    Eps(cmd::eps::Args),
    Bench(cmd::bench::Args),
    Calibrate(cmd::calibrate::Args),
    Selftest(cmd::selftest::Args),
    Targets(cmd::targets::Args),
    Demo(cmd::demo::Args),
}

fn main() -> std::process::ExitCode {
    // Output piped into `head` or `grep -m1` closes early: end quietly like other Unix tools,
    // instead of Rust's ignored SIGPIPE turning the next println! into a panic.
    #[cfg(unix)]
    // SAFETY: restores the default action for SIGPIPE before any thread starts; no other state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Export(a) => cmd::export::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Translate(a) => cmd::translate::run(a),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Eps(a) => cmd::eps::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Calibrate(a) => cmd::calibrate::run(a),
        Command::Selftest(a) => cmd::selftest::run(a),
        Command::Targets(a) => cmd::targets::run(a),
        Command::Demo(a) => cmd::demo::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
