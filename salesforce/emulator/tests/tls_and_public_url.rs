//! HTTPS (generated CA or PEM files) and the public base URL in every absolute URL handed out.

mod common;

use common::{Client, V, read, spawn};
use sf_emulator::{EmulatorConfig, TlsConfig};

fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// Several Salesforce clients insist on https. A generated CA (written to `ca_out` and returned
/// by `ca_pem`) lets a client verify the emulator's certificate; the token answer's
/// `instance_url` and identity URL say https; a plain-HTTP request on the TLS port gets nothing.
#[tokio::test]
async fn self_signed_tls_serves_https_with_a_ca_clients_can_trust() {
    let dir = tempfile::tempdir().unwrap();
    let ca_out = dir.path().join("ca.pem");
    let config = EmulatorConfig {
        tls: Some(TlsConfig::SelfSigned {
            names: vec!["sf.local.test".into()],
            ca_out: Some(ca_out.clone()),
        }),
        ..EmulatorConfig::default()
    };
    let sf = spawn(config).await;
    let port = sf.local_addr().port();
    assert_eq!(sf.url(), format!("https://127.0.0.1:{port}"));
    let ca = sf.ca_pem().expect("a generated CA").to_string();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(std::fs::read_to_string(&ca_out).unwrap(), ca);

    let http = trusting(&ca);
    let token = read(
        http.post(format!("{}/services/oauth2/token", sf.url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "handoff-local-client"),
                ("client_secret", "handoff-local-secret"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(token.body["instance_url"], sf.url());
    assert!(
        token.body["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("https://127.0.0.1:{port}/id/00D"))
    );
    // `localhost` is in the certificate too.
    let c = Client::login(http, &format!("https://localhost:{port}")).await;
    assert_eq!(c.get(&format!("{V}/limits")).await.status, 200);

    // A client that does not trust the CA is refused; plain HTTP gets no HTTP answer.
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{}/services/data/", sf.url()))
            .send()
            .await
            .is_err()
    );
    assert!(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/services/data/"))
            .send()
            .await
            .is_err()
    );
    sf.shutdown().await;
}

/// `--tls-cert/--tls-key`: a chain and key from PEM files (here a CA-signed certificate made for
/// the test); a key that does not belong to the certificate is refused at start with a message.
#[tokio::test]
async fn tls_from_pem_files() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let config = EmulatorConfig {
        tls: Some(TlsConfig::Files {
            cert: cert_path.clone(),
            key: key_path,
        }),
        ..EmulatorConfig::default()
    };
    let sf = spawn(config).await;
    assert!(sf.url().starts_with("https://"));
    assert!(sf.ca_pem().is_none());
    let c = Client::login(trusting(&ca_cert.pem()), &sf.url()).await;
    assert_eq!(c.get(&format!("{V}/limits")).await.status, 200);
    sf.shutdown().await;

    let other_key = dir.path().join("other.pem");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EmulatorConfig {
        tls: Some(TlsConfig::Files {
            cert: cert_path,
            key: other_key,
        }),
        ..EmulatorConfig::default()
    };
    let err = sf_emulator::spawn(config, listener).await.err().unwrap();
    assert!(err.to_string().contains("do not fit together"), "{err}");
}

/// Behind a proxy the emulator's own address is wrong in the URLs it hands out. `public_url`
/// replaces it in `instance_url` and the identity URL (relative URLs such as `nextRecordsUrl`
/// and `attributes.url` stay paths, as on Salesforce). Without it, plain HTTP on the listen
/// address stays the default for existing callers.
#[tokio::test]
async fn public_url_is_used_in_every_absolute_url() {
    let plain = spawn(EmulatorConfig::default()).await;
    assert_eq!(
        plain.url(),
        format!("http://127.0.0.1:{}", plain.local_addr().port())
    );
    plain.shutdown().await;

    let config = EmulatorConfig {
        public_url: Some("https://sf.example.test:8443/".into()),
        ..EmulatorConfig::default()
    };
    let sf = spawn(config).await;
    assert_eq!(sf.url(), "https://sf.example.test:8443");
    let local = format!("http://{}", sf.local_addr());
    let token = read(
        reqwest::Client::new()
            .post(format!("{local}/services/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "handoff-local-client"),
                ("client_secret", "handoff-local-secret"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(token.body["instance_url"], "https://sf.example.test:8443");
    assert!(
        token.body["id"]
            .as_str()
            .unwrap()
            .starts_with("https://sf.example.test:8443/id/00D")
    );
    sf.shutdown().await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EmulatorConfig {
        public_url: Some("https://proxy.test/sf".into()),
        ..EmulatorConfig::default()
    };
    let err = sf_emulator::spawn(config, listener).await.err().unwrap();
    assert!(err.to_string().contains("public_url"), "{err}");
}
