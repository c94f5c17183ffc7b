//! `handoff console …`: local console accounts, for orgs that do not sign in with
//! Salesforce. The password comes from `HANDOFF_CONSOLE_PASSWORD` or the first line of
//! standard input, never from the command line (which other users can see).

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::password;
use crate::store::{NewUserError, Store};

#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Create a local account. The password is read from HANDOFF_CONSOLE_PASSWORD or stdin.
    AddUser {
        /// ASCII letters, digits and `._@+-`, 1–64 characters; unique ignoring case.
        #[arg(long)]
        username: String,
        /// `admin` (may retry, revoke, create tokens, connect Salesforce) or `operator`
        /// (read-only).
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// Set a local account's password (and re-enable it).
    SetPassword {
        #[arg(long)]
        username: String,
    },
}

/// Whether `username` is acceptable for a local account; the error says why not.
pub fn check_username(username: &str) -> Result<(), String> {
    let ok_len = (1..=64).contains(&username.len());
    let ok_chars = username
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err("a username is 1–64 of ASCII letters, digits and . _ @ + -".into())
    }
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("HANDOFF_CONSOLE_PASSWORD") {
        return Ok(password);
    }
    eprintln!("Password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(store: &Store, command: ConsoleCommand) -> anyhow::Result<()> {
    match command {
        ConsoleCommand::AddUser { username, role } => {
            check_username(&username).map_err(anyhow::Error::msg)?;
            let Some(role) = super::session::Role::parse(&role) else {
                bail!("--role must be admin or operator");
            };
            let phc = password::hash(&read_password()?).map_err(anyhow::Error::msg)?;
            match store
                .create_console_user(&username, &phc, role.as_str())
                .await
            {
                Ok(_) => {
                    println!(
                        "Console account {username} ({}) created; sign in at /console/login.",
                        role.as_str()
                    );
                    Ok(())
                }
                Err(NewUserError::Exists) => bail!(
                    "an account named {username} (ignoring letter case) exists; use `handoff console set-password --username {username}`"
                ),
                Err(NewUserError::Db(e)) => Err(e.into()),
            }
        }
        ConsoleCommand::SetPassword { username } => {
            let phc = password::hash(&read_password()?).map_err(anyhow::Error::msg)?;
            if store.set_console_password(&username, &phc).await? {
                println!("The password of {username} is set.");
                Ok(())
            } else {
                bail!(
                    "there is no console account {username}; create it with `handoff console add-user --username {username}`"
                )
            }
        }
    }
}
