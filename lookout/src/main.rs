//! `lookout`: the one binary. `lookout up` runs the whole suite on this machine; each part can
//! also run alone (`lookout service ...`); `lookout check-config` validates a config file;
//! `lookout bench` runs the whole-system benchmarks.
#![forbid(unsafe_code)]

mod bench;
mod config;
mod launcher;
mod logging;
mod monitor;
mod probe;
mod service;
mod supervisor;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use config::{Config, ConfigErrors};

#[derive(Parser)]
#[command(
    name = "lookout",
    version,
    about = "SLA monitoring for a platform of microservices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the whole suite on this machine (the built-in example config when none is given).
    Up {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a config file: every error, with file, line and column.
    CheckConfig { file: PathBuf },
    /// Run one instance of one platform service.
    Service(service::ServiceArgs),
    /// Run a probe agent for one region: its checks, spool and pushes to the collector.
    Probe(probe::ProbeArgs),
    /// Run the collector alone.
    Collector(probe::CollectorArgs),
    /// Run the alerter alone, against a collector.
    Alerting(probe::AlertingArgs),
    /// Run the public status page alone, against a collector.
    StatusPage(probe::StatusPageArgs),
    /// Run the host-health replacer alone (the aws provider).
    Replacer(probe::ReplacerArgs),
    /// Whole-system benchmarks; each prints its figures beside a reference measured in the same run.
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
    },
}

/// Failures that are the user's to fix (bad config, an address in use): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn load(path: Option<&PathBuf>) -> Result<Config, ConfigErrors> {
    match path {
        Some(p) => Config::load(p),
        None => Config::builtin(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                Ok(())
            }
            Err(e) => Err(anyhow::Error::new(e)),
        },
        Command::Up { config } => {
            load(config.as_ref())
                .map_err(anyhow::Error::new)
                .and_then(|cfg| {
                    logging::init(cfg.log.format, &cfg.log.level);
                    runtime()?.block_on(supervisor::up(cfg, config))
                })
        }
        Command::Service(args) => {
            let (format, level) = logging::from_env();
            logging::init(format, &level);
            runtime().and_then(|rt| rt.block_on(service::run(args)))
        }
        Command::Probe(args) => load(args.config.as_ref())
            .map_err(anyhow::Error::new)
            .and_then(|cfg| {
                logging::init(cfg.log.format, &cfg.log.level);
                runtime()?.block_on(probe::run_probe(cfg, args))
            }),
        Command::Collector(args) => load(args.config.as_ref())
            .map_err(anyhow::Error::new)
            .and_then(|cfg| {
                logging::init(cfg.log.format, &cfg.log.level);
                runtime()?.block_on(probe::run_collector(cfg, args))
            }),
        Command::Alerting(args) => load(args.config.as_ref())
            .map_err(anyhow::Error::new)
            .and_then(|cfg| {
                logging::init(cfg.log.format, &cfg.log.level);
                runtime()?.block_on(probe::run_alerting(cfg, args))
            }),
        Command::Replacer(args) => load(args.config.as_ref())
            .map_err(anyhow::Error::new)
            .and_then(|cfg| {
                logging::init(cfg.log.format, &cfg.log.level);
                runtime()?.block_on(probe::run_replacer(cfg, args))
            }),
        Command::StatusPage(args) => load(args.config.as_ref())
            .map_err(anyhow::Error::new)
            .and_then(|cfg| {
                logging::init(cfg.log.format, &cfg.log.level);
                runtime()?.block_on(probe::run_status_page(cfg, args))
            }),
        Command::Bench { which } => {
            logging::init(config::LogFormat::Text, "warn");
            runtime().and_then(|rt| rt.block_on(bench::run(which)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(config_errors) = err.downcast_ref::<ConfigErrors>() {
                eprintln!("{config_errors}");
                let n = config_errors.0.len();
                eprintln!(
                    "lookout: {n} error{} in the config; nothing was started",
                    if n == 1 { "" } else { "s" }
                );
                ExitCode::from(2)
            } else if let Some(usage) = err.downcast_ref::<UsageError>() {
                eprintln!("lookout: {usage}");
                ExitCode::from(2)
            } else {
                eprintln!("lookout: {err:#}");
                ExitCode::FAILURE
            }
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
