//! `lookout`: the one binary. `lookout up` runs the whole suite on this machine; each part can
//! also run alone (`lookout service ...`); `lookout check-config` validates a config file;
//! `lookout bench` runs the whole-system benchmarks of `lookout-bench`, a program of its own so
//! that this one does not carry them.
#![forbid(unsafe_code)]

use lookout::{UsageError, config, logging, probe, service, supervisor};

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
        /// The clustered shape instead (docs/ha.md): three NATS nodes, and replicas of the
        /// collector, the alerter and the status page, each its own process to kill and start
        /// again. Needs nats-server on the PATH.
        #[arg(long)]
        cluster: bool,
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
    /// Whole-system benchmarks (`lookout-bench`, beside this program); each prints its figures
    /// beside a reference measured in the same run. `lookout bench --help` lists them.
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

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
        Command::Up { config, cluster } => load(config.as_ref())
            .map_err(anyhow::Error::new)
            .and_then(|cfg| {
                logging::init(cfg.log.format, &cfg.log.level);
                if cluster {
                    runtime()?.block_on(lookout::cluster_up::up(cfg, config))
                } else {
                    runtime()?.block_on(supervisor::up(cfg, config))
                }
            }),
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
        Command::Bench { args } => bench(&args),
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

/// Runs `lookout-bench` from beside this program, with the arguments after `bench`.
fn bench(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let bench = me.with_file_name(format!("lookout-bench{}", std::env::consts::EXE_SUFFIX));
    if !bench.exists() {
        return Err(UsageError(format!(
            "the benchmarks are a program of their own, and {} is not built: \
             cargo build --release -p lookout-bench",
            bench.display()
        ))
        .into());
    }
    let status = std::process::Command::new(&bench).args(args).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("{} ended with {status}", bench.display()))
    }
}
