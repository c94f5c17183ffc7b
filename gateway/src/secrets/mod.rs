//! Secrets at rest (docs/security.md): every secret Handoff stores in its database is sealed
//! with AES-256-GCM under a key that has an id. The keys come from `[secrets]` (`keys`,
//! `HANDOFF_SECRETS__KEYS`, and/or `keys_file`); the first is the active one, new secrets are
//! sealed with it, and the others still open what they sealed until `handoff keys rotate`
//! re-seals everything under the active key.
//!
//! A sealed value is base64 of a random 96-bit nonce ‖ ciphertext ‖ tag, and the secret's name
//! is the associated data: a row copied to another name does not open. Key material is never
//! printed (the `Debug` of a [`Keyring`] lists key ids only), and no error carries a secret.

mod entries;

use std::io::Read as _;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};

pub use entries::{MAX_KEY_ID_LEN, MAX_KEYS, MAX_KEYS_FILE_BYTES, valid_key_id};

/// The largest secret that can be sealed (a refresh token or a JSON blob is far smaller).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The longest sealed value [`Keyring::open`] decodes (anything longer was not sealed here).
const MAX_SEALED_CHARS: usize = (MAX_SECRET_BYTES + NONCE_LEN + TAG_LEN).div_ceil(3) * 4;

/// What [`Keyring::from_config`] calls the `keys` setting in its errors.
pub const KEYS_SETTING: &str = "[secrets] keys (HANDOFF_SECRETS__KEYS)";

/// Why a key could not be configured, or a secret sealed or opened. No variant carries key
/// material or a secret; the ones about stored rows say what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// No key is configured.
    #[error(
        "no key for secrets is configured: set [secrets] keys (HANDOFF_SECRETS__KEYS) or [secrets] keys_file to an entry that `handoff keys generate` prints (docs/security.md)"
    )]
    NoKey,
    /// A `[secrets]` setting is wrong; `setting` names it.
    #[error("{setting}: {problem}. Fix that setting (docs/security.md describes the key format)")]
    Config { setting: String, problem: String },
    /// A stored secret was sealed with a key that is not configured.
    #[error(
        "the stored secret {name:?} is sealed with key {key_id:?}, which is not configured: add the key that sealed it back to [secrets] keys (or keys_file), or re-enter the credentials in the console so they are stored under the current key"
    )]
    UnknownKey { name: String, key_id: String },
    /// A stored secret does not open with the key of its id: the row was altered, or that
    /// id now names another key.
    #[error(
        "the stored secret {name:?} does not open with key {key_id:?}: the row was altered, or that key id now names a different key than the one that sealed it. Put the key that sealed it back in [secrets] under that id, or re-enter the credentials in the console"
    )]
    Undecryptable { name: String, key_id: String },
    /// The secret is larger than [`MAX_SECRET_BYTES`].
    #[error("the secret {name:?} is {len} bytes; at most {max} can be stored")]
    TooLarge {
        name: String,
        len: usize,
        max: usize,
    },
}

/// A sealed secret: the id of the key that sealed it and base64(nonce ‖ ciphertext ‖ tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub sealed: String,
}

#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// The configured keys, the active one first. Cheap to share behind an `Arc`.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .field("key_material", &"[redacted]")
            .finish()
    }
}

/// A fresh key entry from [`generate_entry`].
pub struct GeneratedKey {
    /// `k<yyyymmdd>-<6 random letters and digits>`.
    pub id: String,
    /// `id:base64(32 random bytes)`, as `[secrets] keys` takes it.
    pub entry: SecretString,
}

/// A new key: 32 random bytes under a dated id, `k<yyyymmdd>-<6 random alphanumerics>`.
pub fn generate_entry() -> GeneratedKey {
    let id = format!(
        "k{}-{}",
        chrono::Utc::now().format("%Y%m%d"),
        random_alphanumeric(6)
    );
    let key: [u8; 32] = rand::random();
    let entry = format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    GeneratedKey {
        id,
        entry: SecretString::from(entry),
    }
}

fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The name an OAuth flow's PKCE verifier (`oauth_flows.verifier_sealed`) is sealed under:
/// the associated data that ties it to its row. Sealing and re-sealing both use this.
pub fn oauth_verifier_name(state_hash: &str) -> String {
    format!("oauth_flows.{state_hash}")
}

impl Keyring {
    /// From `[secrets]`: the entries of `keys`, then those of `keys_file`. No key configured →
    /// an empty keyring, with which sealing and opening fail with [`SecretsError::NoKey`]
    /// (or [`Keyring::ephemeral`] when `ephemeral_fallback` is set).
    /// Refuses bad base64, keys that are not 32 bytes, bad ids, and ids that repeat (also
    /// ignoring ASCII case), naming the setting.
    pub fn from_config(cfg: &crate::config::SecretsConfig) -> Result<Keyring, SecretsError> {
        let mut found = Vec::new();
        if let Some(keys) = &cfg.keys {
            entries::parse_into(keys.expose_secret(), KEYS_SETTING, false, &mut found)?;
        }
        if let Some(path) = &cfg.keys_file {
            let setting = format!("[secrets] keys_file ({})", path.display());
            let text = read_keys_file(path, &setting)?;
            let before = found.len();
            entries::parse_into(&text, &setting, true, &mut found)?;
            if found.len() == before {
                return Err(SecretsError::Config {
                    setting,
                    problem: "the file holds no key entries".into(),
                });
            }
        }
        if found.is_empty() && cfg.ephemeral_fallback {
            return Ok(Keyring::ephemeral());
        }
        Ok(Keyring {
            keys: found
                .into_iter()
                .map(|e| Key {
                    cipher: Aes256Gcm::new(e.key.expose_secret().into()),
                    id: e.id,
                })
                .collect(),
        })
    }

    /// One fresh random key, id `ephemeral-<6 alphanumerics>` (sandbox, demo, bench, tests):
    /// what it seals is lost with the process.
    pub fn ephemeral() -> Keyring {
        let key: [u8; 32] = rand::random();
        Keyring {
            keys: vec![Key {
                id: format!("ephemeral-{}", random_alphanumeric(6)),
                cipher: Aes256Gcm::new(&key.into()),
            }],
        }
    }

    /// The id of the key new secrets are sealed with (the first configured).
    pub fn active_key_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    /// Every configured key id, the active one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Whether a key with exactly this id is configured.
    pub fn has_key(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// AES-256-GCM under the active key with a random 96-bit nonce, `name` as associated data.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<Sealed, SecretsError> {
        let key = self.keys.first().ok_or(SecretsError::NoKey)?;
        if plaintext.len() > MAX_SECRET_BYTES {
            return Err(SecretsError::TooLarge {
                name: name.to_owned(),
                len: plaintext.len(),
                max: MAX_SECRET_BYTES,
            });
        }
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ciphertext = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: name.as_bytes(),
                },
            )
            // Only a message beyond GCM's 64 GiB limit fails, and MAX_SECRET_BYTES is far below.
            .map_err(|_| SecretsError::TooLarge {
                name: name.to_owned(),
                len: plaintext.len(),
                max: MAX_SECRET_BYTES,
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key.id.clone(),
            sealed: base64::engine::general_purpose::STANDARD.encode(out),
        })
    }

    /// Opens what [`Keyring::seal`] sealed under `name` with the key `key_id`.
    pub fn open(&self, name: &str, key_id: &str, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        if self.keys.is_empty() {
            return Err(SecretsError::NoKey);
        }
        let Some(key) = self.keys.iter().find(|k| k.id == key_id) else {
            return Err(SecretsError::UnknownKey {
                name: name.to_owned(),
                key_id: key_id.to_owned(),
            });
        };
        let undecryptable = || SecretsError::Undecryptable {
            name: name.to_owned(),
            key_id: key_id.to_owned(),
        };
        if sealed.len() > MAX_SEALED_CHARS {
            return Err(undecryptable());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| undecryptable())?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| undecryptable())?;
        key.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| undecryptable())
    }
}

/// Reads a keys file, refusing one larger than [`MAX_KEYS_FILE_BYTES`].
fn read_keys_file(path: &std::path::Path, setting: &str) -> Result<String, SecretsError> {
    let bad = |problem: String| SecretsError::Config {
        setting: setting.to_owned(),
        problem,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open the file: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEYS_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_KEYS_FILE_BYTES {
        return Err(bad(format!(
            "the file is larger than {MAX_KEYS_FILE_BYTES} bytes; it should hold a few key entries"
        )));
    }
    String::from_utf8(bytes).map_err(|_| bad("the file is not UTF-8 text".into()))
}

#[cfg(test)]
mod tests;
