//! The `berth` binary: command-line interface, configuration loading and process wiring.
//! Everything a request does lives in the library crates; this crate only assembles them.

mod admin;
mod config;
mod serve;

use clap::{Parser, Subcommand};
use config::{Config, ConfigErrors, keys};
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

/// Where the registry's configuration and data are: every subcommand finds them the same way
/// (the flags may also follow a subcommand's own arguments).
#[derive(clap::Args, Clone)]
struct Common {
    /// Quay-style config.yaml. Keys can also be set as BERTH_<KEY> environment variables.
    #[arg(
        long,
        short = 'c',
        env = "BERTH_CONFIG",
        value_name = "FILE",
        global = true
    )]
    config: Option<PathBuf>,
    /// Directory for the embedded database and local blob storage [default: ./berth-data]
    #[arg(long, value_name = "DIR", global = true)]
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
    /// Account maintenance on the registry's database: create users, set passwords, unlock
    /// accounts, rotate token signing keys.
    ///
    /// The database is found exactly as `berth serve` finds it: give the same --config,
    /// --data-dir or BERTH_* environment. Example:
    /// berth admin set-password admin --data-dir /var/lib/berth
    Admin {
        #[command(flatten)]
        common: Common,
        /// Create a new, empty registry database when there is none where the configuration
        /// points (otherwise admin commands refuse, so a wrong path is noticed).
        #[arg(long, global = true)]
        create: bool,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Vulnerability data: import OSV records on an air-gapped host, show what is loaded.
    ///
    /// Example: berth vulndb import ./PyPI/all.zip --data-dir /var/lib/berth
    Vulndb {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: VulndbCommand,
    },
}

#[derive(Subcommand)]
pub enum VulndbCommand {
    /// Import an OSV source now: an osv.dev `all.zip`, a directory of OSV JSON records or one
    /// record, by path, file:// or https:// URL. Only records new or changed since its last
    /// import are written; withdrawn ones are removed.
    Import {
        /// Paths or URLs.
        #[arg(required = true)]
        sources: Vec<String>,
    },
    /// List the imported sources: when each was imported, its records, its last error.
    Status,
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
    /// Load the configuration and check what `serve` needs (directories, files, addresses);
    /// report every problem, and the keys this version does not act on.
    Validate {
        #[command(flatten)]
        common: Common,
    },
    /// List every key Berth acts on, with its meaning.
    Keys {
        /// Every known key, Quay's included: type, what Berth does with it, and why.
        #[arg(long)]
        all: bool,
        /// As JSON (every key, with its type, class, Quay default and help).
        #[arg(long)]
        json: bool,
    },
}

fn env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

fn report(e: &ConfigErrors) -> ExitCode {
    eprintln!("berth: {e}");
    if e.wants_key_list() {
        eprintln!("Run `berth config keys` for the keys Berth understands.");
    }
    ExitCode::from(2)
}

fn load(common: &Common, listen: Option<String>) -> Result<Config, ExitCode> {
    let mut c = Config::load(common.config.as_deref(), env()).map_err(|e| report(&e))?;
    if let Some(d) = &common.data_dir {
        c.set_data_dir(d.clone());
    }
    if let Some(l) = listen
        && let Err(e) = c.set_listen(&l)
    {
        return Err(report(&ConfigErrors {
            file: c.file.clone(),
            errors: vec![e],
        }));
    }
    Ok(c)
}

fn validate(common: &Common) -> ExitCode {
    let (mut cfg, mut errors) = match Config::load_partial(common.config.as_deref(), env()) {
        Ok(loaded) => loaded,
        Err(e) => return report(&e),
    };
    if let Some(d) = &common.data_dir {
        cfg.set_data_dir(d.clone());
    }
    // What serve would meet next; a key already at fault is not reported twice.
    for e in cfg.check_environment() {
        if !errors.iter().any(|known| known.key == e.key) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.key.cmp(&b.key));
        return report(&ConfigErrors {
            file: cfg.file.clone(),
            errors,
        });
    }
    match &cfg.file {
        Some(f) => println!("configuration {} is valid", f.display()),
        None => println!("configuration (defaults and BERTH_* environment) is valid"),
    }
    println!("  listen:   {}", cfg.listen);
    println!("  data:     {}", cfg.data_locations());
    let preferred = cfg.preferred_storage().map(|(name, _)| name.clone());
    for name in cfg.storage_order() {
        if let Some(loc) = cfg.storage.get(&name) {
            let first = if preferred.as_ref() == Some(&name) {
                " (written first)"
            } else {
                ""
            };
            println!("  storage:  {name} {loc}{first}");
        }
    }
    if !cfg.unavailable_features.is_empty() {
        println!(
            "  not available in this version: {}",
            cfg.unavailable_features.join(", ")
        );
    }
    if !cfg.ignored_keys.is_empty() {
        println!(
            "  keys with no effect in Berth ({}): {}",
            cfg.ignored_keys.len(),
            cfg.ignored_keys.join(", ")
        );
    }
    ExitCode::SUCCESS
}

/// `berth config keys`. Output goes through `writeln!`, so a reader that stops early
/// (`berth config keys | head`) ends the listing quietly instead of a panic on a broken pipe.
fn list_keys(all: bool, json: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        let items: Vec<serde_json::Value> = keys::all()
            .map(|d| {
                let parse = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
                let mut o = serde_json::json!({
                    "name": d.name,
                    "quay": d.quay,
                    "class": d.class.label(),
                    "type": d.ty.name(),
                    "help": d.help,
                    "quay_default": (!d.quay_default.is_empty()).then(|| parse(d.quay_default)),
                });
                if !d.choices.is_empty() {
                    o["choices"] = serde_json::json!(d.choices);
                }
                if let keys::Class::Guard { safe, .. } = d.class {
                    o["safe"] = parse(safe);
                }
                o
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(items));
        return;
    }
    for d in keys::all() {
        let written = match (&d.class, all) {
            (keys::Class::Acted(_), false) => writeln!(out, "{:40} {}", d.name, d.help),
            (_, false) => Ok(()),
            (class, true) => writeln!(
                out,
                "{:48} {:11} {:18} {}",
                d.name,
                class.label(),
                d.ty.name(),
                d.help
            ),
        };
        if written.is_err() {
            return;
        }
    }
    if !all {
        let _ = writeln!(
            out,
            "\nEvery other key of Quay's config.yaml is accepted too; `berth config keys --all` says what each does in Berth."
        );
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
        Command::Admin {
            common,
            create,
            command,
        } => match load(&common, None) {
            Ok(cfg) => run(admin::admin(cfg, create, command)),
            Err(code) => return code,
        },
        Command::Migrate { common } => match load(&common, None) {
            Ok(cfg) => run(serve::migrate_only(cfg)),
            Err(code) => return code,
        },
        Command::Vulndb { common, command } => match load(&common, None) {
            Ok(cfg) => run(serve::vulndb(cfg, command)),
            Err(code) => return code,
        },
        Command::Config {
            command: ConfigCommand::Validate { common },
        } => return validate(&common),
        Command::Config {
            command: ConfigCommand::Keys { all, json },
        } => {
            list_keys(all, json);
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
