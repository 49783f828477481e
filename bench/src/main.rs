//! `lookout-bench NAME` (or `lookout bench NAME`): whole-system benchmarks. Each prints its
//! figures beside a reference measured in the same run on the same machine, since a lone
//! absolute figure says little. A program of its own, so that `lookout` does not carry them; it
//! starts the suite through the `lookout` library and runs the `lookout` beside it.
#![forbid(unsafe_code)]

mod alerting;
mod cluster;
mod cluster_page;
mod collector;
mod console;
mod exact_target;
mod icmp_responder;
mod load;
mod platform;
mod probes;
mod replacer;
mod status_page;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "lookout-bench",
    version,
    about = "Lookout's whole-system benchmarks, each beside a reference measured in the same run"
)]
enum Bench {
    /// The gateway's artist view under 32 concurrent clients, beside a static copy of it.
    Platform(platform::Args),
    /// Many checks at once against a delayed target, beside blackbox_exporter in the same run.
    Probes(probes::Args),
    /// Durable ingest beside the disk's sync rate; 90-day answers for 500 checks beside a raw scan.
    Collector(collector::Args),
    /// The replicated log: ingest through a three-node NATS cluster into two collector
    /// replicas beside a single collector, and a wiped replica's catch-up.
    Cluster(cluster::Args),
    /// The console's check chart: 7 days of 10 s values rendered as SVG, beside reading those
    /// values from the collector in the same run.
    Console(console::Args),
    /// Outages and blips injected into `lookout up`: time to page and to resolve, and false
    /// pages, beside Prometheus + blackbox_exporter + Alertmanager in the same run.
    Alerting(alerting::Args),
    /// The status page's front page under 64 concurrent clients while ingest goes on, beside
    /// nginx serving a static copy of the same bytes in the same run.
    StatusPage(status_page::Args),
    /// Instances killed or hung in `lookout up`: time to a healthy replacement serving, and
    /// failed probes meanwhile; a hung instance (healthchecks only) is the reference.
    Replacer(replacer::Args),
    /// The probe benchmark's target: an HTTP server whose delay is exact (run by `bench probes`).
    #[command(hide = true)]
    ExactTarget(exact_target::Args),
    /// The probe benchmark's ICMP peer: echo replies exactly late (run by `bench probes`).
    #[command(hide = true)]
    IcmpResponder(icmp_responder::Args),
}

fn main() -> std::process::ExitCode {
    let which = Bench::parse();
    lookout::logging::init(lookout::config::LogFormat::Text, "warn");
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(which)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lookout-bench: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(which: Bench) -> anyhow::Result<()> {
    match which {
        Bench::Platform(args) => platform::run(args).await,
        Bench::Probes(args) => probes::run(args).await,
        Bench::Collector(args) => collector::run(args).await,
        Bench::Cluster(args) => cluster::run(args).await,
        Bench::Alerting(args) => alerting::run(args).await,
        Bench::Console(args) => console::run(args).await,
        Bench::Replacer(args) => replacer::run(args).await,
        Bench::StatusPage(args) => status_page::run(args).await,
        Bench::ExactTarget(args) => {
            tokio::task::spawn_blocking(move || exact_target::run(&args)).await?
        }
        Bench::IcmpResponder(args) => {
            tokio::task::spawn_blocking(move || icmp_responder::run(&args)).await?
        }
    }
}
