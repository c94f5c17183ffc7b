//! HTTPS: a rustls server configuration (aws-lc-rs provider) from PEM files, or from a CA and a
//! server certificate generated at start, whose CA certificate clients are told to trust.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// How the emulator serves TLS (absent: plain HTTP).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum TlsConfig {
    /// A certificate chain and its private key, both PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// A CA and a server certificate generated at start (for `localhost`, `127.0.0.1`, `::1`,
    /// the public URL's host and `names`). The CA certificate (PEM) is written to `ca_out`
    /// when set, and is available from `EmulatorHandle::ca_pem`.
    SelfSigned {
        #[serde(default)]
        names: Vec<String>,
        #[serde(default)]
        ca_out: Option<PathBuf>,
    },
}

/// A ready server configuration, plus the CA to trust when it was generated.
pub(crate) struct Tls {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) ca_pem: Option<String>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Builds the TLS setup. `public_host` is the host of the public URL (added to a generated
/// certificate's names).
pub(crate) fn build(config: &TlsConfig, public_host: Option<&str>) -> Result<Tls, String> {
    match config {
        TlsConfig::Files { cert, key } => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("TLS certificate {} is not PEM: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!(
                    "TLS certificate {} holds no CERTIFICATE block",
                    cert.display()
                ));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read TLS private key {}: {e}", key.display()))?;
            Ok(Tls {
                server: server_config(chain, key)?,
                ca_pem: None,
            })
        }
        TlsConfig::SelfSigned { names, ca_out } => {
            let generated = generate(names, public_host).map_err(|e| e.to_string())?;
            if let Some(path) = ca_out {
                std::fs::write(path, &generated.ca_pem).map_err(|e| {
                    format!("cannot write the CA certificate to {}: {e}", path.display())
                })?;
            }
            let key = PrivateKeyDer::from_pem_slice(generated.key_pem.as_bytes())
                .map_err(|e| format!("generated key: {e}"))?;
            Ok(Tls {
                server: server_config(vec![generated.cert_der], key)?,
                ca_pem: Some(generated.ca_pem),
            })
        }
    }
}

struct Generated {
    ca_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
}

fn generate(extra: &[String], public_host: Option<&str>) -> Result<Generated, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "sf-emulator local CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(public_host.map(str::to_string));
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "sf-emulator");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Generated {
        ca_pem: ca_cert.pem(),
        cert_der: leaf_cert.der().clone(),
        key_pem: leaf_key.serialize_pem(),
    })
}
