//! `berth admin …`: account maintenance on the registry's database, without a server. The
//! database is the one `berth serve` would open with the same flags and environment; a command
//! never creates an empty one unless asked (`--create`), so a wrong path cannot go unnoticed.

use crate::AdminCommand;
use crate::config::Config;
use anyhow::Context;
use berth_core::auth::Auth;

/// How to point `berth admin` at the registry's data.
const HOW_TO_POINT: &str = "Give berth admin the same --config FILE, --data-dir DIR or BERTH_* \
     environment (BERTH_DB_URI, BERTH_DATA_DIR) that `berth serve` runs with; the flags may \
     follow the command, e.g. `berth admin set-password admin --data-dir /var/lib/berth`.";
const OR_CREATE: &str = "Or pass --create to make a new, empty registry database there.";

/// Where the configuration says the database is, in words.
fn looked_where(cfg: &Config) -> String {
    let from = match (&cfg.file, cfg.db_uri.is_some()) {
        (Some(f), true) => format!("DB_URI, read from {} or BERTH_DB_URI", f.display()),
        (None, true) => "DB_URI (BERTH_DB_URI)".to_string(),
        (_, false) => format!(
            "the data directory {} (--data-dir, DATA_DIR or the default ./berth-data)",
            cfg.data_dir.display()
        ),
    };
    format!("looked at {} as set by {from}", cfg.db_uri_display())
}

/// Opens the registry database, refusing to create one unless `create`.
async fn open(cfg: &Config, create: bool) -> anyhow::Result<berth_core::Db> {
    if !create
        && let Some(path) = cfg.sqlite_path()
        && !path.exists()
    {
        anyhow::bail!(
            "no Berth database at {} ({}).\n{HOW_TO_POINT}\n{OR_CREATE}",
            path.display(),
            looked_where(cfg)
        );
    }
    let db = crate::serve::open_db(cfg).await?;
    // A database without Berth's tables is a new, empty one (or another program's).
    if !create
        && db
            .count_accounts(berth_core::auth::AccountKind::User)
            .await
            .is_err()
    {
        anyhow::bail!(
            "the database {} holds no Berth registry ({}).\n{HOW_TO_POINT}\n{OR_CREATE}",
            cfg.db_uri_display(),
            looked_where(cfg)
        );
    }
    db.migrate().await.context("database migration failed")?;
    Ok(db)
}

/// The user `name`, or an error that says where Berth looked.
async fn existing_user(
    auth: &Auth,
    cfg: &Config,
    name: &str,
) -> anyhow::Result<berth_core::Account> {
    match auth.user(name).await {
        Ok(row) => Ok(row),
        Err(e) if e.is_not_found() => anyhow::bail!(
            "there is no user {name:?} in the database {}; create it with `berth admin create-user {name}`, \
             or point berth admin at the registry's data.\n{HOW_TO_POINT}",
            cfg.db_uri_display(),
        ),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

pub async fn admin(cfg: Config, create: bool, cmd: AdminCommand) -> anyhow::Result<()> {
    let db = open(&cfg, create).await?;
    let auth = Auth::new(db, cfg.auth.clone())
        .await
        .context("cannot load identity and access (signing keys, secrets)")?;
    match cmd {
        AdminCommand::CreateUser {
            username,
            email,
            superuser,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            let row = auth
                .create_user(None, &username, Some(&pw), email.as_deref(), superuser)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if password_stdin {
                println!(
                    "created {}user {}",
                    if superuser { "super" } else { "" },
                    row.name
                );
            } else {
                println!(
                    "created {}user {} with password {pw}",
                    if superuser { "super" } else { "" },
                    row.name
                );
            }
        }
        AdminCommand::SetPassword {
            username,
            password_stdin,
        } => {
            let row = existing_user(&auth, &cfg, &username).await?;
            let password = read_password(password_stdin)?;
            let system = berth_core::auth::Actor {
                superuser: true,
                ..auth.actor(&row, "cli")
            };
            auth.update_user(
                &system,
                &username,
                &berth_core::auth::accounts::UserChanges {
                    password: Some(&password),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            if password_stdin {
                println!("password of {username} changed");
            } else {
                println!("password of {username} changed to {password}");
            }
        }
        AdminCommand::ResetLogin { username } => {
            existing_user(&auth, &cfg, &username).await?;
            auth.reset_login(None, &username)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("failed logins of {username} cleared; the account is unlocked");
        }
        AdminCommand::RotateKeys => {
            let kid = auth
                .keys
                .rotate(&auth.config.service)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("new token signing key {kid}; older keys verify until they expire");
        }
    }
    auth.audit.flush().await;
    println!("database: {}", cfg.db_uri_display());
    Ok(())
}

/// A password from the first line of standard input, or a generated one.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if !from_stdin {
        return Ok(berth_core::auth::secret::random_token(24));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
