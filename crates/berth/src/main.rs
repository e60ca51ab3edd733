//! The `berth` binary: command-line interface, configuration loading and process wiring.
//! Everything a request does lives in the library crates; this crate only assembles them.

mod config;
mod serve;

use clap::{Parser, Subcommand};
use config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Berth: a container image registry (OCI Distribution 1.1 and Docker Registry API v2).
///
/// With no configuration, `berth serve` listens on 127.0.0.1:5000 and keeps everything in
/// ./berth-data (an SQLite database and a blob directory), creating it on first start.
#[derive(Parser)]
#[command(name = "berth", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand that reads the configuration shares.
#[derive(clap::Args, Clone)]
struct Common {
    /// Quay-style config.yaml. Keys can also be set as BERTH_<KEY> environment variables.
    #[arg(long, short = 'c', env = "BERTH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the embedded database and local blob storage [default: ./berth-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry HTTP server (runs database migrations first).
    ///
    /// Example: berth serve --listen 0.0.0.0:5000 --data-dir /var/lib/berth
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address and port to listen on [default: 127.0.0.1:5000]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Do not run database migrations at start (run `berth migrate` yourself).
        #[arg(long)]
        no_migrate: bool,
        /// Do not run background workers in this process (run `berth worker` elsewhere).
        #[arg(long)]
        no_workers: bool,
    },
    /// Run background workers (replication and other queued jobs) without serving HTTP.
    Worker {
        #[command(flatten)]
        common: Common,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Account maintenance: create users, unlock accounts, rotate token signing keys.
    Admin {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a user (a password is generated and printed unless given).
    ///
    /// Example: berth admin create-user alice --email alice@example.com --superuser
    CreateUser {
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Make the user a superuser.
        #[arg(long)]
        superuser: bool,
        /// Read the password (at least 8 characters) from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password.
    SetPassword {
        username: String,
        /// Read the new password from standard input (otherwise one is generated and printed).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Clear a user's failed logins, unlocking an account locked by failed-login throttling.
    ResetLogin { username: String },
    /// Create a new signing key for registry tokens (older keys keep verifying until they expire).
    RotateKeys,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the configuration, report problems and the Quay keys this version does not act on.
    Validate {
        #[command(flatten)]
        common: Common,
    },
    /// List every key Berth acts on, with its meaning.
    Keys,
}

fn load(common: &Common, listen: Option<String>) -> Result<Config, ExitCode> {
    match Config::load(common.config.as_deref(), std::env::vars()) {
        Ok(mut c) => {
            if let Some(d) = &common.data_dir {
                c.set_data_dir(d.clone());
            }
            if let Some(l) = listen {
                c.listen = l;
            }
            Ok(c)
        }
        Err(e) => {
            eprintln!("berth: invalid configuration: {e}");
            eprintln!("Run `berth config keys` for the keys Berth understands.");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            common,
            listen,
            no_migrate,
            no_workers,
        } => match load(&common, listen) {
            Ok(cfg) => run(serve::serve(cfg, !no_migrate, !no_workers)),
            Err(code) => return code,
        },
        Command::Worker { common } => match load(&common, None) {
            Ok(cfg) => run(serve::worker_only(cfg)),
            Err(code) => return code,
        },
        Command::Admin { common, command } => match load(&common, None) {
            Ok(cfg) => run(serve::admin(cfg, command)),
            Err(code) => return code,
        },
        Command::Migrate { common } => match load(&common, None) {
            Ok(cfg) => run(serve::migrate_only(cfg)),
            Err(code) => return code,
        },
        Command::Config {
            command: ConfigCommand::Validate { common },
        } => match load(&common, None) {
            Ok(cfg) => {
                println!("configuration is valid");
                println!("  database: {}", cfg.db_uri());
                if let Some((name, loc)) = cfg.preferred_storage() {
                    println!("  storage:  {name} {loc}");
                }
                if !cfg.unused_quay_keys.is_empty() {
                    println!(
                        "  Quay keys read but not acted on by this version: {}",
                        cfg.unused_quay_keys.join(", ")
                    );
                }
                Ok(())
            }
            Err(code) => return code,
        },
        Command::Config {
            command: ConfigCommand::Keys,
        } => {
            for (k, meaning) in config::BERTH_KEYS {
                println!("{k:40} {meaning}");
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}
