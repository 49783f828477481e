//! `lookout bench NAME`: whole-system benchmarks. Each prints its figures beside a reference
//! measured in the same run on the same machine, since a lone absolute figure says little.

mod load;
mod platform;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// The gateway's artist view under 32 concurrent clients, beside a static copy of it.
    Platform(platform::Args),
}

pub async fn run(which: Bench) -> anyhow::Result<()> {
    match which {
        Bench::Platform(args) => platform::run(args).await,
    }
}
