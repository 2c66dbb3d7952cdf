//! Benchmark tools for s3seal, one subcommand each: the cipher
//! microbenchmark, the upstream S3 server, the reference sealing hop and the
//! load driver. `benches/run.sh` starts them, and docs/benchmarks.md
//! describes the setup and the results.

mod cipher;
mod common;
mod hop;
mod load;
mod upstream;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "s3seal-bench", about = "Benchmark tools for s3seal")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measures AES-256-GCM implementations on 64 KiB segments.
    Cipher(cipher::CipherArgs),
    /// Runs the upstream S3 server: in memory, or s3s-fs on a directory.
    Upstream(upstream::UpstreamArgs),
    /// Runs the reference hop that seals bodies and forwards requests.
    Hop(hop::HopArgs),
    /// Drives PutObject and GetObject load against targets and records the
    /// figures as JSON.
    Load(load::LoadArgs),
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    if let Command::Cipher(args) = command {
        return cipher::run(args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Cipher(_) => unreachable!("handled before the runtime starts"),
            Command::Upstream(args) => upstream::run(args).await,
            Command::Hop(args) => hop::run(args).await,
            Command::Load(args) => load::run(args).await,
        }
    })
}
