//! `handoff keys …`: the keys that seal stored secrets (docs/security.md).

use std::path::Path;

use anyhow::bail;
use clap::Subcommand;
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::secrets::Keyring;
use crate::store::{RESEAL_BATCH, Store};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new key entry for `[secrets] keys` (`HANDOFF_SECRETS__KEYS`); nothing is stored.
    Generate,
    /// The configured key ids (the first is active) and the stored rows sealed with each.
    /// Exits non-zero when rows are sealed with a key that is not configured.
    Status,
    /// Re-seal every stored secret with the active key, then say which keys may be removed.
    Rotate,
}

/// The rotation procedure, as `generate` and the docs tell it.
const ROTATION_STEPS: &str = "\
To rotate without downtime (docs/security.md):
  1. add the new entry SECOND in [secrets] keys on every replica, and restart them (known, not yet used);
  2. move it FIRST on every replica, and restart them (new secrets are sealed with it);
  3. run `handoff keys rotate` once (re-seals what the old key sealed);
  4. remove the old entry from every replica.";

pub async fn run(config_file: Option<&Path>, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate => {
            let key = crate::secrets::generate_entry();
            println!("{}", key.entry.expose_secret());
            eprintln!(
                "New key {id}. It is shown only now; keep it as secret as the database password: with it and the database, the stored credentials can be read, and without it they are lost.\n\
                 First key: set HANDOFF_SECRETS__KEYS to the line above (or [secrets] keys, or put it in the file [secrets] keys_file names) on every replica.\n\
                 {ROTATION_STEPS}",
                id = key.id
            );
            Ok(())
        }
        KeysCommand::Status => {
            let (keys, store) = open(config_file).await?;
            status(&keys, &store).await
        }
        KeysCommand::Rotate => {
            let (keys, store) = open(config_file).await?;
            rotate(&keys, &store).await
        }
    }
}

async fn open(config_file: Option<&Path>) -> anyhow::Result<(Keyring, Store)> {
    let config = Config::load(config_file)?;
    let keys = Keyring::from_config(&config.secrets)?;
    let store = Store::open(&config.database_url).await?;
    Ok((keys, store))
}

async fn status(keys: &Keyring, store: &Store) -> anyhow::Result<()> {
    let counts = store.secret_key_counts().await?;
    if keys.is_empty() {
        println!(
            "No key is configured ([secrets] keys / HANDOFF_SECRETS__KEYS, or keys_file); `handoff keys generate` prints one."
        );
    } else {
        println!("{:<40} {:<7} ROWS", "KEY", "");
        for (i, id) in keys.key_ids().enumerate() {
            println!(
                "{id:<40} {:<7} {}",
                if i == 0 { "active" } else { "" },
                counts.get(id).copied().unwrap_or(0)
            );
        }
    }
    let active = keys.active_key_id();
    let older: u64 = counts
        .iter()
        .filter(|(id, _)| keys.has_key(id) && Some(id.as_str()) != active)
        .map(|(_, n)| n)
        .sum();
    let missing: Vec<(&String, &u64)> = counts.iter().filter(|(id, _)| !keys.has_key(id)).collect();
    if older > 0 {
        println!(
            "{older} stored rows are sealed with an older key; `handoff keys rotate` re-seals them with the active key."
        );
    }
    if missing.is_empty() {
        if older == 0 && !counts.is_empty() {
            println!("Every stored secret is sealed with the active key.");
        }
        return Ok(());
    }
    println!("Stored rows sealed with keys that are not configured:");
    for (id, n) in &missing {
        println!("{id:<40} {:<7} {n}", "MISSING");
    }
    let rows: u64 = missing.iter().map(|(_, n)| **n).sum();
    bail!(
        "{rows} stored rows are sealed with keys that are not configured, so they cannot be read: add those keys back to [secrets] keys (or keys_file), or re-enter the credentials in the console"
    )
}

async fn rotate(keys: &Keyring, store: &Store) -> anyhow::Result<()> {
    let Some(active) = keys.active_key_id() else {
        bail!(crate::secrets::SecretsError::NoKey);
    };
    let report = store
        .reseal_secrets(keys, RESEAL_BATCH, |r| {
            eprintln!("re-sealed {}/{}", r.done(), r.total);
        })
        .await?;
    if report.total == 0 {
        println!("Nothing to re-seal: no stored row is sealed with another key than {active}.");
    } else {
        println!(
            "Re-sealed {} stored rows with the active key {active}.",
            report.resealed
        );
    }
    if report.changed_meanwhile > 0 {
        println!(
            "{} rows were rewritten while this ran and were left as written.",
            report.changed_meanwhile
        );
    }
    if report.failed > 0 {
        for failure in &report.failures {
            eprintln!(
                "  {} {:?} (key {}): {}",
                failure.table.as_str(),
                failure.row,
                failure.key_id,
                failure.error
            );
        }
        bail!(
            "{} stored rows could not be opened and are left as they were: add the keys that sealed them back to [secrets] keys and run `handoff keys rotate` again, or re-enter those credentials in the console",
            report.failed
        );
    }
    let counts = store.secret_key_counts().await?;
    let elsewhere: Vec<&String> = counts.keys().filter(|id| id.as_str() != active).collect();
    if !elsewhere.is_empty() {
        bail!(
            "rows sealed with {elsewhere:?} were written while this ran (is a replica still running with another active key?): make {active} the first key on every replica, then run `handoff keys rotate` again"
        );
    }
    let removable: Vec<&str> = keys.key_ids().filter(|id| *id != active).collect();
    if removable.is_empty() {
        println!("Every stored secret is sealed with {active}.");
    } else {
        println!(
            "Every stored secret is sealed with {active}. The other keys ({}) may now be removed from [secrets] on every replica.",
            removable.join(", ")
        );
    }
    Ok(())
}
