//! Local console passwords: Argon2id PHC strings, verified off the async runtime, at most
//! two at a time (a flood of sign-in attempts cannot take the CPU from the gateway), with
//! the same work for unknown usernames (no timing tells which accounts exist).

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

/// Verifications running at once.
static VERIFYING: Semaphore = Semaphore::const_new(2);

/// Shortest local password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest (Argon2 hashes any length; a bound keeps a request's work bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes a new password (Argon2id, the crate's default parameters, a random salt).
pub fn hash(password: &str) -> Result<String, String> {
    check_new(password)?;
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether a new password is acceptable; the error says what is wrong.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

/// A hash nobody's password matches, verified when the username is unknown.
static DECOY: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::encode_b64(&[7u8; 16]).expect("16 bytes encode");
    Argon2::default()
        .hash_password(b"handoff decoy password, never accepted", &salt)
        .expect("argon2 hashes")
        .to_string()
});

/// Checks `password` against `stored` (a PHC string), or against a decoy when `stored` is
/// `None`, so both take the same time. Oversized passwords are refused without hashing.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(_permit) = VERIFYING.acquire().await else {
        return false;
    };
    let known = stored.is_some();
    tokio::task::spawn_blocking(move || {
        let phc = stored.unwrap_or_else(|| DECOY.clone());
        let matched = PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        matched && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(phc.clone())).await);
        assert!(!verify("correct horse batterY".into(), Some(phc)).await);
        assert!(!verify("handoff decoy password, never accepted".into(), None).await);
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(hash("short").is_err());
        assert!(hash(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
