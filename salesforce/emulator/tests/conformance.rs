//! Conformance tests over real sockets: the emulator is spawned on 127.0.0.1:0 and driven with
//! reqwest, checking status codes, headers and bodies against docs/reference/salesforce-rest.md.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sf_emulator::schema::{CustomField, FieldDef, FieldKind};
use sf_emulator::{
    ConnectedApp, EmulatorConfig, EmulatorHandle, Faults, FlowConfig, RefreshTokenConfig,
};
use sha2::Sha256;

const V: &str = "/services/data/v62.0";
const PRIVATE_KEY: &str = include_str!("fixtures/test_only_jwt_private_key.pem");
const PUBLIC_KEY: &str = include_str!("fixtures/test_only_jwt_public_key.pem");
const CERT: &str = include_str!("fixtures/test_only_jwt_cert.pem");
const OTHER_KEY: &str = include_str!("fixtures/test_only_other_private_key.pem");

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Sf {
    handle: EmulatorHandle,
    http: reqwest::Client,
    token: String,
}

async fn spawn(config: EmulatorConfig) -> EmulatorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sf_emulator::spawn(config, listener).await.unwrap()
}

async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp {
        status,
        headers,
        body,
    }
}

async fn token_request(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Resp {
    read(
        http.post(format!("{url}/services/oauth2/token"))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn client_credentials(http: &reqwest::Client, url: &str) -> String {
    let r = token_request(
        http,
        url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "handoff-local-client"),
            ("client_secret", "handoff-local-secret"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

impl Sf {
    async fn start(config: EmulatorConfig) -> Sf {
        let handle = spawn(config).await;
        let http = reqwest::Client::new();
        let token = client_credentials(&http, &handle.url()).await;
        Sf {
            handle,
            http,
            token,
        }
    }

    async fn default() -> Sf {
        Sf::start(EmulatorConfig::default()).await
    }

    fn url(&self) -> String {
        self.handle.url()
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_with(method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.url()))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    async fn create(&self, object: &str, body: Value) -> String {
        let r = self
            .call("POST", &format!("{V}/sobjects/{object}"), Some(body))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }
}

fn error_code(r: &Resp) -> &str {
    r.body[0]["errorCode"].as_str().unwrap_or_default()
}

fn error_message(r: &Resp) -> &str {
    r.body[0]["message"].as_str().unwrap_or_default()
}

fn is_sf_datetime(s: &str) -> bool {
    s.len() == 28
        && s.ends_with("+0000")
        && chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").is_ok()
}

fn checksum_ok(id: &str) -> bool {
    id.len() == 18 && sf_emulator::ids::to18(&id[..15]) == id
}

// ---------------------------------------------------------------- OAuth

#[tokio::test]
async fn client_credentials_success_body_matches_the_reference() {
    let h = spawn(EmulatorConfig::default()).await;
    let http = reqwest::Client::new();
    let r = token_request(
        &http,
        &h.url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "handoff-local-client"),
            ("client_secret", "handoff-local-secret"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let b = r.body.as_object().unwrap();
    let mut keys: Vec<&str> = b.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "access_token",
            "id",
            "instance_url",
            "issued_at",
            "scope",
            "signature",
            "token_type"
        ]
    );
    assert!(
        b["access_token"]
            .as_str()
            .unwrap()
            .starts_with("00D5g000004Hnd0!")
    );
    assert_eq!(b["instance_url"], json!(h.url()));
    assert_eq!(b["token_type"], "Bearer");
    let issued_at = b["issued_at"].as_str().unwrap();
    assert_eq!(issued_at.len(), 13, "epoch milliseconds");
    let id = b["id"].as_str().unwrap();
    assert!(id.starts_with(&format!("{}/id/00D5g000004Hnd0", h.url())));
    let user_id = id.rsplit('/').next().unwrap();
    assert!(user_id.starts_with("005") && checksum_ok(user_id));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"handoff-local-secret").unwrap();
    mac.update(format!("{id}{issued_at}").as_bytes());
    assert_eq!(
        b["signature"].as_str().unwrap(),
        STANDARD.encode(mac.finalize().into_bytes())
    );
    assert!(b.get("refresh_token").is_none());

    // HTTP Basic instead of body credentials.
    let r = read(
        http.post(format!("{}/services/oauth2/token", h.url()))
            .basic_auth("handoff-local-client", Some("handoff-local-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.stats().token_requests, 2);
    assert_eq!(h.stats().tokens_issued, 2);
}

#[tokio::test]
async fn token_endpoint_errors() {
    let mut config = EmulatorConfig::default();
    config
        .connected_apps
        .push(ConnectedApp::new("no-run-as", "s"));
    let h = spawn(config).await;
    let http = reqwest::Client::new();
    let url = h.url();
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "handoff-local-client"),
                ("client_secret", "wrong"),
            ],
            "invalid_client",
            "invalid client credentials",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nope"),
                ("client_secret", "x"),
            ],
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "no-run-as"),
                ("client_secret", "s"),
            ],
            "invalid_grant",
            "no client credentials user enabled",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "handoff-local-client"),
                ("client_secret", "handoff-local-secret"),
                ("username", "integration@handoff.local"),
                ("password", "handoff-password"),
            ],
            "invalid_grant",
            "authentication failure",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", "handoff-local-client"),
                ("refresh_token", "nope"),
            ],
            "invalid_grant",
            "expired access/refresh token",
        ),
        (
            vec![("grant_type", "authorization_code"), ("code", "x")],
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("code", "x"),
            ],
            "unsupported_grant_type",
            "grant type not supported",
        ),
    ];
    for (form, error, description) in cases {
        let r = token_request(&http, &url, &form).await;
        assert_eq!(r.status, 400, "{form:?}");
        assert_eq!(
            r.body,
            json!({"error": error, "error_description": description}),
            "{form:?}"
        );
    }
    assert_eq!(h.stats().rejected.get("token:invalid_grant"), Some(&3));
}

#[tokio::test]
async fn password_and_refresh_token_grants() {
    let mut config = EmulatorConfig::default();
    config.connected_apps[0]
        .refresh_tokens
        .push(RefreshTokenConfig {
            token: "5Aep861-test-refresh".into(),
            username: "integration@handoff.local".into(),
        });
    let h = spawn(config).await;
    let http = reqwest::Client::new();
    let r = token_request(
        &http,
        &h.url(),
        &[
            ("grant_type", "password"),
            ("client_id", "handoff-local-client"),
            ("client_secret", "handoff-local-secret"),
            ("username", "integration@handoff.local"),
            ("password", "handoff-passwordhandoff-token"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    let r = token_request(
        &http,
        &h.url(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "handoff-local-client"),
            ("client_secret", "handoff-local-secret"),
            ("refresh_token", "5Aep861-test-refresh"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    let token = r.body["access_token"].as_str().unwrap();
    let r = read(
        http.get(format!("{}{V}/limits", h.url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
}

fn jwt(key_pem: &str, alg: Algorithm, claims: Value) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(b"secret"),
        _ => EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap()
}

#[tokio::test]
async fn jwt_bearer_grant() {
    let mut config = EmulatorConfig::default();
    config.connected_apps[0].jwt_public_key_pem = Some(PUBLIC_KEY.to_string());
    config.connected_apps.push(ConnectedApp {
        jwt_public_key_pem: Some(CERT.to_string()),
        ..ConnectedApp::new("cert-app", "cert-secret")
    });
    let h = spawn(config).await;
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let claims = |iss: &str, sub: &str, aud: &str, exp: i64| json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp});
    let grant = |assertion: String| {
        let http = http.clone();
        let url = h.url();
        async move {
            token_request(
                &http,
                &url,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                ],
            )
            .await
        }
    };
    let user = "integration@handoff.local";
    let login = "https://login.salesforce.com";

    for (key, iss, aud) in [
        (PRIVATE_KEY, "handoff-local-client", login),
        (
            PRIVATE_KEY,
            "handoff-local-client",
            "https://test.salesforce.com",
        ),
        (PRIVATE_KEY, "handoff-local-client", h.url().as_str()),
        (PRIVATE_KEY, "cert-app", login),
    ] {
        let r = grant(jwt(
            key,
            Algorithm::RS256,
            claims(iss, user, aud, now + 170),
        ))
        .await;
        assert_eq!(r.status, 200, "{iss} {aud}: {}", r.body);
        assert!(r.body.get("refresh_token").is_none());
        assert_eq!(r.body["token_type"], "Bearer");
    }
    // `exp` as a string, as in Salesforce's doc example.
    let r = grant(jwt(
        PRIVATE_KEY,
        Algorithm::RS256,
        json!({"iss": "handoff-local-client", "sub": user, "aud": login, "exp": (now + 60).to_string()}),
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let refused: Vec<(String, &str, &str)> = vec![
        (
            jwt(
                PRIVATE_KEY,
                Algorithm::RS256,
                claims(
                    "handoff-local-client",
                    user,
                    "https://evil.example",
                    now + 60,
                ),
            ),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            jwt(
                PRIVATE_KEY,
                Algorithm::RS256,
                claims("handoff-local-client", user, login, now - 5),
            ),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            jwt(
                PRIVATE_KEY,
                Algorithm::RS256,
                claims("handoff-local-client", user, login, now + 600),
            ),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            jwt(
                OTHER_KEY,
                Algorithm::RS256,
                claims("handoff-local-client", user, login, now + 60),
            ),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            jwt(
                "",
                Algorithm::HS256,
                claims("handoff-local-client", user, login, now + 60),
            ),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            jwt(
                PRIVATE_KEY,
                Algorithm::RS256,
                claims("unknown-app", user, login, now + 60),
            ),
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            jwt(
                PRIVATE_KEY,
                Algorithm::RS256,
                claims("handoff-local-client", "nobody@x.test", login, now + 60),
            ),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            "not-a-jwt".to_string(),
            "invalid_grant",
            "invalid assertion",
        ),
    ];
    for (assertion, error, description) in refused {
        let r = grant(assertion).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            json!({"error": error, "error_description": description})
        );
    }
}

#[tokio::test]
async fn token_error_next_fails_only_token_requests() {
    let sf = Sf::default().await;
    sf.handle.set_faults(Faults {
        token_error_next: 1,
        ..Faults::default()
    });
    let r = token_request(
        &sf.http,
        &sf.url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "handoff-local-client"),
            ("client_secret", "handoff-local-secret"),
        ],
    )
    .await;
    assert_eq!(r.status, 503);
    // API calls are unaffected, and the next token request works.
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        200
    );
    client_credentials(&sf.http, &sf.url()).await;
    assert_eq!(sf.handle.faults().token_error_next, 0);
}

// ---------------------------------------------------------------- REST basics

#[tokio::test]
async fn session_versions_and_resources() {
    let sf = Sf::default().await;
    let http = &sf.http;
    let r = read(
        http.get(format!("{}{V}/limits", sf.url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    let r = read(
        http.get(format!("{}{V}/limits", sf.url()))
            .bearer_auth("00D5g000004Hnd0!bogus")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    // The older `OAuth` scheme works too.
    let r = read(
        http.get(format!("{}{V}/", sf.url()))
            .header("Authorization", format!("OAuth {}", sf.token))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["sobjects"], json!(format!("{V}/sobjects")));
    assert_eq!(r.body["query"], json!(format!("{V}/query")));
    assert!(r.header("sforce-limit-info").is_some());

    // Versions list: no auth, no limit header.
    let r = read(
        http.get(format!("{}/services/data/", sf.url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.header("sforce-limit-info").is_none());
    let list = r.body.as_array().unwrap();
    assert_eq!(
        list[0],
        json!({"version": "20.0", "url": "/services/data/v20.0", "label": "Winter '11"})
    );
    assert_eq!(list.last().unwrap()["version"], "67.0");
    assert!(
        list.iter().any(|v| v
            == &json!({"version": "66.0", "url": "/services/data/v66.0", "label": "Spring '26"}))
    );

    for version in ["v19.0", "v68.0", "v62.1", "62.0"] {
        let r = sf
            .call("GET", &format!("/services/data/{version}/limits"), None)
            .await;
        assert_eq!(r.status, 404, "{version}");
        assert_eq!(
            r.body,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        );
    }
    let r = sf
        .call("GET", &format!("{V}/sobjects/CaseComment/describe"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["keyPrefix"], "00a");
    let body = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "CommentBody")
        .unwrap();
    assert_eq!(body["label"], "Body");
    assert_eq!(body["length"], 4000);
    let r = sf.call("GET", &format!("{V}/sobjects"), None).await;
    assert!(
        r.body["sobjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "Case" && o["keyPrefix"] == "500")
    );
    let r = sf.call("GET", &format!("{V}/nothing/here"), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(error_code(&r), "NOT_FOUND");
}

#[tokio::test]
async fn create_and_get_case() {
    let sf = Sf::default().await;
    let r = sf
        .call(
            "POST",
            &format!("{V}/sobjects/Case"),
            Some(json!({"Subject": "Printer broken", "Origin": "Web", "SuppliedEmail": "ann@example.com"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body, json!({"id": id, "errors": [], "success": true}));
    assert_eq!(
        r.header("location").unwrap(),
        format!("{V}/sobjects/Case/{id}")
    );
    assert_eq!(r.header("sforce-limit-info").unwrap(), "api-usage=1/100000");
    assert!(id.starts_with("500") && checksum_ok(&id), "{id}");

    let second = sf.create("Case", json!({"Subject": "again"})).await;
    assert_ne!(second, id);

    let r = sf
        .call("GET", &format!("{V}/sobjects/Case/{id}"), None)
        .await;
    assert_eq!(r.status, 200);
    let rec = r.body.as_object().unwrap();
    assert_eq!(
        rec["attributes"],
        json!({"type": "Case", "url": format!("{V}/sobjects/Case/{id}")})
    );
    assert_eq!(rec["Id"], json!(id));
    assert_eq!(rec["CaseNumber"], "00001001");
    assert_eq!(rec["Status"], "New");
    assert_eq!(rec["IsClosed"], false);
    assert_eq!(rec["Description"], Value::Null, "nulls are included");
    assert!(rec.contains_key("Handoff_Session_Id__c"));
    for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        assert!(is_sf_datetime(rec[f].as_str().unwrap()), "{f}: {}", rec[f]);
    }
    assert!(rec["OwnerId"].as_str().unwrap().starts_with("005"));
    let r = sf
        .call("GET", &format!("{V}/sobjects/Case/{second}"), None)
        .await;
    assert_eq!(r.body["CaseNumber"], "00001002");

    // 15-char id and a lower-cased 18-char id address the same record.
    let r = sf
        .call(
            "GET",
            &format!("{V}/sobjects/Case/{}?fields=Subject,CaseNumber", &id[..15]),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["Subject"], "Printer broken");
    assert!(r.body.get("Description").is_none());
    let r = sf
        .call(
            "GET",
            &format!("{V}/sobjects/Case/{}", id.to_ascii_lowercase()),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["Id"], json!(id));

    let r = sf
        .call("GET", &format!("{V}/sobjects/Case/{id}?fields=Nope"), None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "INVALID_FIELD");

    let snapshot = sf.handle.records("Case");
    assert_eq!(snapshot.len(), 2);
    assert_eq!(sf.handle.stats().routes.get("POST sobjects/Case"), Some(&2));
}

#[tokio::test]
async fn not_found_shapes() {
    let sf = Sf::default().await;
    let missing = sf_emulator::ids::to18("5005g0000999999");
    let r = sf
        .call("GET", &format!("{V}/sobjects/Case/{missing}"), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    );
    let r = sf
        .call("GET", &format!("{V}/sobjects/Case/23foo"), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!([{"message": "Provided external ID field does not exist or is not accessible: 23foo", "errorCode": "NOT_FOUND"}])
    );
    let r = sf
        .call("DELETE", &format!("{V}/sobjects/Case/23foo"), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        error_message(&r),
        "Provided external ID field does not exist or is not accessible: 23foo"
    );
    let r = sf
        .call(
            "POST",
            &format!("{V}/sobjects/Whizbang"),
            Some(json!({"Name": "x"})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = sf
        .call(
            "PUT",
            &format!("{V}/sobjects/Case/{missing}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn update_and_delete() {
    let sf = Sf::default().await;
    let id = sf.create("Case", json!({"Subject": "s"})).await;
    let path = format!("{V}/sobjects/Case/{id}");
    let r = sf
        .call("PATCH", &path, Some(json!({"Status": "Closed"})))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.body, Value::Null);
    let rec = sf.call("GET", &path, None).await.body;
    assert_eq!(rec["IsClosed"], true);
    assert!(is_sf_datetime(rec["ClosedDate"].as_str().unwrap()));

    let r = sf
        .call("PATCH", &path, Some(json!({"CaseNumber": "1"})))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(r.body[0]["fields"], json!(["CaseNumber"]));
    let r = sf
        .call("PATCH", &path, Some(json!({"IsClosed": false})))
        .await;
    assert_eq!(error_code(&r), "INVALID_FIELD_FOR_INSERT_UPDATE");
    let r = sf.call("PATCH", &path, Some(json!({"Id": id}))).await;
    assert_eq!(
        r.body,
        json!([{"message": "The Id field should not be specified in the sobject data.", "errorCode": "INVALID_FIELD"}])
    );

    // `_HttpMethod=PATCH` override.
    let r = sf
        .call(
            "POST",
            &format!("{path}?_HttpMethod=PATCH"),
            Some(json!({"Status": "Working"})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(sf.call("GET", &path, None).await.body["IsClosed"], false);

    let comment = sf
        .create(
            "CaseComment",
            json!({"ParentId": id, "CommentBody": "hello", "IsPublished": true}),
        )
        .await;
    assert!(comment.starts_with("00a"));
    assert_eq!(sf.call("DELETE", &path, None).await.status, 204);
    let r = sf.call("GET", &path, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(error_code(&r), "ENTITY_IS_DELETED");
    assert!(
        sf.handle.records("CaseComment").is_empty(),
        "comments cascade with the case"
    );

    // Case.Comments becomes an internal CaseComment; a comment too long in bytes fails the
    // whole update and leaves the case unchanged.
    let id = sf.create("Case", json!({"Subject": "with comments"})).await;
    let path = format!("{V}/sobjects/Case/{id}");
    let r = sf
        .call(
            "PATCH",
            &path,
            Some(json!({"Subject": "changed", "Comments": "€".repeat(1334)})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "STRING_TOO_LONG");
    assert_eq!(
        sf.call("GET", &path, None).await.body["Subject"],
        "with comments"
    );
    assert!(sf.handle.records("CaseComment").is_empty());
    assert_eq!(
        sf.call("PATCH", &path, Some(json!({"Comments": "note"})))
            .await
            .status,
        204
    );
    let comments = sf.handle.records("CaseComment");
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["IsPublished"], false);
    assert_eq!(comments[0]["ParentId"], json!(id));
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn validation_errors() {
    let sf = Sf::default().await;
    let post = |object: &str, body: Value| {
        let path = format!("{V}/sobjects/{object}");
        let sf = &sf;
        async move { sf.call("POST", &path, Some(body)).await }
    };
    let r = post("Case", json!({"foo": 1})).await;
    assert_eq!(
        r.body,
        json!([{"message": "No such column 'foo' on sobject of type Case", "errorCode": "INVALID_FIELD"}])
    );
    let r = post("Case", json!({"Id": "5005g0000200001AAA", "Subject": "x"})).await;
    assert_eq!(
        error_message(&r),
        "The Id field should not be specified in the sobject data."
    );
    let r = post("Contact", json!({"FirstName": "Ann"})).await;
    assert_eq!(
        r.body,
        json!([{"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}])
    );
    let long = "x".repeat(256);
    let r = post("Case", json!({"Subject": long})).await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "STRING_TOO_LONG");
    assert_eq!(
        error_message(&r),
        format!("Subject: data value too large: {long} (max length=255)")
    );
    assert_eq!(r.body[0]["fields"], json!(["Subject"]));
    assert_eq!(
        post("Case", json!({"Subject": "é".repeat(255)}))
            .await
            .status,
        201,
        "chars, not bytes"
    );

    let r = post(
        "Contact",
        json!({"LastName": "X", "Email": "Not a real email address"}),
    )
    .await;
    assert_eq!(
        r.body,
        json!([{"message": "Email: invalid email address: Not a real email address", "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}])
    );
    let r = post(
        "Contact",
        json!({"LastName": "X", "AccountId": "001xx000003DGb2999"}),
    )
    .await;
    assert_eq!(error_code(&r), "MALFORMED_ID");
    assert_eq!(
        error_message(&r),
        "Account ID: id value of incorrect type: 001xx000003DGb2999"
    );
    let missing_account = sf_emulator::ids::to18("0015g0000999999");
    let r = post(
        "Contact",
        json!({"LastName": "X", "AccountId": missing_account}),
    )
    .await;
    assert_eq!(error_code(&r), "INVALID_CROSS_REFERENCE_KEY");
    let account = sf.create("Account", json!({"Name": "Acme"})).await;
    let r = post("Case", json!({"ContactId": account})).await;
    assert_eq!(error_code(&r), "FIELD_INTEGRITY_EXCEPTION");
    let contact = sf
        .create(
            "Contact",
            json!({"LastName": "X", "AccountId": &account[..15]}),
        )
        .await;
    let stored = sf
        .call("GET", &format!("{V}/sobjects/Contact/{contact}"), None)
        .await;
    assert_eq!(
        stored.body["AccountId"],
        json!(account),
        "references are stored as 18-char ids"
    );

    let r = post("CaseComment", json!({"CommentBody": "x"})).await;
    assert_eq!(error_code(&r), "REQUIRED_FIELD_MISSING");
    assert_eq!(r.body[0]["fields"], json!(["ParentId"]));
    let case = sf.create("Case", json!({"Subject": "for comments"})).await;
    let r = post(
        "CaseComment",
        json!({"ParentId": case, "IsPublished": "yes"}),
    )
    .await;
    assert_eq!(error_code(&r), "JSON_PARSER_ERROR");

    let r = read(
        sf.http
            .post(format!("{}{V}/sobjects/Case", sf.url()))
            .bearer_auth(&sf.token)
            .header("content-type", "application/json")
            .body("{\"Subject\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "JSON_PARSER_ERROR");

    let r = post("Case", json!({"Handoff_Session_Id__c": "dup"})).await;
    assert_eq!(r.status, 201);
    let first = r.body["id"].as_str().unwrap().to_string();
    let r = post("Case", json!({"Handoff_Session_Id__c": "DUP"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "DUPLICATE_VALUE");
    assert_eq!(
        error_message(&r),
        format!(
            "duplicate value found: Handoff_Session_Id__c duplicates value on record with id: {}",
            &first[..15]
        )
    );
}

#[tokio::test]
async fn case_comment_body_is_limited_in_utf8_bytes() {
    let sf = Sf::default().await;
    let case = sf.create("Case", json!({"Subject": "bytes"})).await;
    let post = |body: String| {
        let sf = &sf;
        let case = case.clone();
        async move {
            sf.call(
                "POST",
                &format!("{V}/sobjects/CaseComment"),
                Some(json!({"ParentId": case, "CommentBody": body})),
            )
            .await
        }
    };
    assert_eq!(post("a".repeat(4000)).await.status, 201);
    let r = post("a".repeat(4001)).await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "STRING_TOO_LONG");
    assert!(error_message(&r).starts_with("Body: data value too large: aaa"));
    assert!(error_message(&r).ends_with("(max length=4000)"));

    // 1333 euro signs (3 bytes each) + 1 byte = 4000 bytes, 1334 characters: accepted.
    let ok = format!("{}a", "€".repeat(1333));
    assert_eq!(ok.len(), 4000);
    assert_eq!(post(ok).await.status, 201);
    // 4001 bytes but only 1335 characters: refused.
    let too_long = format!("{}ab", "€".repeat(1333));
    assert_eq!(too_long.len(), 4001);
    let r = post(too_long).await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "STRING_TOO_LONG");
    // 4-byte characters: 1000 × 😀 = 4000 bytes OK, one more is not.
    assert_eq!(post("😀".repeat(1000)).await.status, 201);
    assert_eq!(post("😀".repeat(1001)).await.status, 400);
}

// ---------------------------------------------------------------- upsert

fn legacy_key_field() -> CustomField {
    CustomField {
        object: "Case".into(),
        field: FieldDef {
            name: "Legacy_Key__c".into(),
            label: "Legacy Key".into(),
            kind: FieldKind::String,
            length: Some(64),
            length_in_bytes: false,
            required: false,
            createable: true,
            updateable: true,
            external_id: true,
            unique: false,
            default: None,
            reference_to: None,
            relationship_name: None,
        },
    }
}

#[tokio::test]
async fn upsert_by_external_id() {
    let mut config = EmulatorConfig::default();
    config.custom_fields.push(legacy_key_field());
    let sf = Sf::start(config).await;
    let path = format!("{V}/sobjects/Case/Handoff_Session_Id__c/sess%3A1");
    let r = sf
        .call("PATCH", &path, Some(json!({"Subject": "first"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.body,
        json!({"id": id, "success": true, "errors": [], "created": true})
    );
    assert_eq!(
        r.header("location").unwrap(),
        format!("{V}/sobjects/Case/{id}")
    );

    let r = sf
        .call("PATCH", &path, Some(json!({"Subject": "second"})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    let r = sf
        .call(
            "PATCH",
            "/services/data/v45.0/sobjects/Case/Handoff_Session_Id__c/sess:1",
            Some(json!({"Subject": "third"})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.body, Value::Null);
    let r = sf.call("GET", &path, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["Subject"], "third");
    assert_eq!(r.body["Handoff_Session_Id__c"], "sess:1");
    assert_eq!(sf.handle.records("Case").len(), 1);

    // v45 create answers 201 without `created`.
    let r = sf
        .call(
            "PATCH",
            "/services/data/v45.0/sobjects/Case/Handoff_Session_Id__c/old",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body.get("created").is_none());

    // Several matches → 300 with the record URLs.
    let a = sf.create("Case", json!({"Legacy_Key__c": "K"})).await;
    let b = sf.create("Case", json!({"Legacy_Key__c": "k"})).await;
    let r = sf
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/Legacy_Key__c/K"),
            Some(json!({"Subject": "x"})),
        )
        .await;
    assert_eq!(r.status, 300);
    assert_eq!(
        r.body,
        json!([
            format!("{V}/sobjects/Case/{a}"),
            format!("{V}/sobjects/Case/{b}")
        ])
    );
    assert_eq!(
        sf.call("GET", &format!("{V}/sobjects/Case/Legacy_Key__c/K"), None)
            .await
            .status,
        300
    );

    let r = sf
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/Namez/1"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!([{"message": "Provided external ID field does not exist or is not accessible: Namez", "errorCode": "NOT_FOUND"}])
    );
    // A field that exists but is not an external id is not accessible that way either.
    let r = sf
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/Subject/x"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = sf
        .call(
            "GET",
            &format!("{V}/sobjects/Case/Handoff_Session_Id__c/none"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = sf
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/Handoff_Session_Id__c/none?updateOnly=true"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404);
}

// ---------------------------------------------------------------- composite

#[tokio::test]
async fn composite_all_or_none_rolls_back() {
    let sf = Sf::default().await;
    let body = json!({
        "allOrNone": true,
        "compositeRequest": [
            {"method": "POST", "url": format!("{V}/sobjects/Account"), "referenceId": "refAccount", "body": {"Name": "Sample"}},
            {"method": "POST", "url": format!("{V}/sobjects/Contact"), "referenceId": "refContact",
             "body": {"LastName": "Sample", "AccountId": "@{refAccount.id}"}},
            {"method": "POST", "url": format!("{V}/sobjects/Contact"), "referenceId": "badContact",
             "body": {"LastName": "Bad", "Email": "Not a real email address"}},
            {"method": "GET", "url": format!("{V}/sobjects/Account/@{{refAccount.id}}"), "referenceId": "after"},
        ]
    });
    let r = sf.call("POST", &format!("{V}/composite"), Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let subs = r.body["compositeResponse"].as_array().unwrap();
    assert_eq!(subs.len(), 4);
    let halted = json!([{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed."}]);
    for i in [0, 1, 3] {
        assert_eq!(subs[i]["httpStatusCode"], 400);
        assert_eq!(subs[i]["body"], halted);
    }
    assert_eq!(subs[2]["referenceId"], "badContact");
    assert_eq!(subs[2]["httpStatusCode"], 400);
    assert_eq!(
        subs[2]["body"],
        json!([{"message": "Email: invalid email address: Not a real email address", "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}])
    );
    assert!(sf.handle.records("Account").is_empty());
    assert!(sf.handle.records("Contact").is_empty());
    assert_eq!(
        sf.handle.stats().api_calls,
        1,
        "a composite request is one API call"
    );

    // The same without the bad subrequest commits everything, with resolved references.
    let body = json!({
        "allOrNone": true,
        "compositeRequest": [
            {"method": "POST", "url": format!("{V}/sobjects/Account"), "referenceId": "refAccount", "body": {"Name": "Sample"}},
            {"method": "POST", "url": format!("{V}/sobjects/Contact"), "referenceId": "refContact",
             "body": {"LastName": "Sample", "AccountId": "@{refAccount.id}"}},
            {"method": "GET", "url": format!("{V}/query?q=SELECT+Id,Name+FROM+Account"), "referenceId": "q"},
            {"method": "PATCH", "url": format!("{V}/sobjects/Account/@{{q.records[0].Id}}"), "referenceId": "upd",
             "body": {"Phone": "555"}},
        ]
    });
    let r = sf.call("POST", &format!("{V}/composite"), Some(body)).await;
    let subs = r.body["compositeResponse"].as_array().unwrap();
    assert_eq!(subs[0]["httpStatusCode"], 201);
    let account = subs[0]["body"]["id"].as_str().unwrap();
    assert_eq!(
        subs[0]["httpHeaders"]["Location"],
        json!(format!("{V}/sobjects/Account/{account}"))
    );
    assert_eq!(subs[1]["httpStatusCode"], 201);
    assert_eq!(subs[2]["httpStatusCode"], 200);
    assert_eq!(subs[2]["body"]["records"][0]["Id"], json!(account));
    assert_eq!(subs[3]["httpStatusCode"], 204);
    assert_eq!(subs[3]["body"], Value::Null);
    let contacts = sf.handle.records("Contact");
    assert_eq!(contacts[0]["AccountId"], json!(account));
    assert_eq!(sf.handle.records("Account")[0]["Phone"], "555");
}

#[tokio::test]
async fn composite_independent_subrequests() {
    let sf = Sf::default().await;
    let body = json!({
        "allOrNone": false,
        "compositeRequest": [
            {"method": "POST", "url": format!("{V}/sobjects/Account"), "referenceId": "badAccount", "body": {"Phone": "1"}},
            {"method": "POST", "url": format!("{V}/sobjects/Contact"), "referenceId": "dependent",
             "body": {"LastName": "D", "AccountId": "@{badAccount.id}"}},
            {"method": "POST", "url": format!("{V}/sobjects/Contact"), "referenceId": "independent", "body": {"LastName": "I"}},
        ]
    });
    let r = sf.call("POST", &format!("{V}/composite"), Some(body)).await;
    assert_eq!(r.status, 200);
    let subs = r.body["compositeResponse"].as_array().unwrap();
    assert_eq!(subs[0]["httpStatusCode"], 400);
    assert_eq!(subs[0]["body"][0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(subs[1]["httpStatusCode"], 400);
    assert_eq!(subs[1]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(
        subs[1]["body"][0]["message"],
        "Invalid reference specified. No value for badAccount.id found in badAccount. Provided referenceId ('badAccount') is not valid."
    );
    assert_eq!(subs[2]["httpStatusCode"], 201);
    let contacts = sf.handle.records("Contact");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["LastName"], "I");
}

#[tokio::test]
async fn composite_envelope_errors() {
    let sf = Sf::default().await;
    let sub = |i: usize| json!({"method": "GET", "url": format!("{V}/limits"), "referenceId": format!("r{i}")});
    let too_many: Vec<Value> = (0..26).map(sub).collect();
    let r = sf
        .call(
            "POST",
            &format!("{V}/composite"),
            Some(json!({"compositeRequest": too_many})),
        )
        .await;
    assert_eq!(r.status, 400);
    let exactly: Vec<Value> = (0..25).map(sub).collect();
    let r = sf
        .call(
            "POST",
            &format!("{V}/composite"),
            Some(json!({"compositeRequest": exactly})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["compositeResponse"].as_array().unwrap().len(), 25);

    let bad = [
        json!({"compositeRequest": [{"method": "GET", "url": format!("{V}/limits"), "referenceId": "a", "httpHeaders": {"Authorization": "Bearer x"}}]}),
        json!({"compositeRequest": [{"method": "GET", "url": format!("{V}/limits"), "referenceId": "a", "httpHeaders": {"Content-Type": "text/plain"}}]}),
        json!({"compositeRequest": [{"method": "GET", "url": format!("{V}/limits")}]}),
        json!({"compositeRequest": [{"method": "GET", "url": format!("{V}/limits"), "referenceId": "bad-id"}]}),
        json!({"compositeRequest": [sub(1), sub(1)]}),
        json!({"compositeRequest": [{"method": "get", "url": format!("{V}/limits"), "referenceId": "a"}]}),
    ];
    for body in bad {
        let before = sf.handle.records("Account").len();
        let r = sf
            .call("POST", &format!("{V}/composite"), Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}");
        assert!(r.body.is_array(), "{}", r.body);
        assert_eq!(before, sf.handle.records("Account").len());
    }
    // Allowed headers pass through (batch size for a query subrequest).
    let r = sf
        .call(
            "POST",
            &format!("{V}/composite"),
            Some(json!({"compositeRequest": [{"method": "GET", "url": format!("{V}/query?q=SELECT+Id+FROM+Case"),
                "referenceId": "q", "httpHeaders": {"Sforce-Query-Options": "batchSize=200"}}]})),
        )
        .await;
    assert_eq!(r.body["compositeResponse"][0]["httpStatusCode"], 200);
}

// ---------------------------------------------------------------- collections

#[tokio::test]
async fn collections_create_update_upsert() {
    let sf = Sf::default().await;
    let path = format!("{V}/composite/sobjects");
    let r = sf
        .call(
            "POST",
            &path,
            Some(json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Case"}, "Subject": "one"},
                {"attributes": {"type": "Contact"}, "FirstName": "no last name"},
                {"attributes": {"type": "Account"}, "Name": "Acme"},
            ]})),
        )
        .await;
    assert_eq!(r.status, 200);
    let results = r.body.as_array().unwrap();
    assert_eq!(results[0]["success"], true);
    assert!(results[0]["id"].as_str().unwrap().starts_with("500"));
    assert_eq!(
        results[1],
        json!({"success": false, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]", "fields": ["LastName"]}]})
    );
    assert_eq!(results[2]["success"], true);
    let case_id = results[0]["id"].as_str().unwrap().to_string();

    let r = sf
        .call(
            "PATCH",
            &path,
            Some(json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Case"}, "id": case_id, "Subject": "changed"},
                {"attributes": {"type": "Contact"}, "id": "001xx000003DGb2999", "LastName": "x"},
                {"attributes": {"type": "Case"}, "Subject": "no id"},
            ]})),
        )
        .await;
    let results = r.body.as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"id": case_id, "success": true, "errors": []})
    );
    assert_eq!(
        results[1]["errors"][0],
        json!({"statusCode": "MALFORMED_ID", "message": "Contact ID: id value of incorrect type: 001xx000003DGb2999", "fields": ["Id"]})
    );
    assert_eq!(results[2]["errors"][0]["statusCode"], "MISSING_ARGUMENT");
    assert_eq!(sf.handle.records("Case")[0]["Subject"], "changed");

    let r = sf
        .call(
            "PATCH",
            &format!("{V}/composite/sobjects/Case/Handoff_Session_Id__c"),
            Some(json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Case"}, "Handoff_Session_Id__c": "s-1", "Subject": "new"},
                {"attributes": {"type": "Case"}, "Handoff_Session_Id__c": "s-1", "Subject": "again"},
            ]})),
        )
        .await;
    let results = r.body.as_array().unwrap();
    assert_eq!(results[0]["created"], true);
    assert_eq!(results[1]["created"], false);
    assert_eq!(results[0]["id"], results[1]["id"]);

    let r = sf
        .call(
            "GET",
            &format!("{V}/composite/sobjects/Case?ids={case_id},5005g0000999999&fields=Subject"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body[0]["Subject"], "changed");
    assert_eq!(r.body[1], Value::Null);

    let too_many: Vec<Value> = (0..201)
        .map(|i| json!({"attributes": {"type": "Case"}, "Subject": format!("c{i}")}))
        .collect();
    let r = sf
        .call("POST", &path, Some(json!({"records": too_many})))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.is_array());

    let r = sf
        .call("DELETE", &format!("{path}?ids={case_id}"), None)
        .await;
    assert_eq!(
        r.body,
        json!([{"id": case_id, "success": true, "errors": []}])
    );
}

#[tokio::test]
async fn collections_all_or_none_rolls_back() {
    let sf = Sf::default().await;
    let existing = sf.create("Contact", json!({"LastName": "Keep"})).await;
    let r = sf
        .call(
            "POST",
            &format!("{V}/composite/sobjects"),
            Some(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Case"}, "Subject": "would be created"},
                {"attributes": {"type": "Contact"}, "LastName": "x", "Email": "broken"},
            ]})),
        )
        .await;
    assert_eq!(r.status, 200);
    let results = r.body.as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []}]})
    );
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "INVALID_EMAIL_ADDRESS"
    );
    assert!(sf.handle.records("Case").is_empty());
    assert_eq!(sf.handle.records("Contact").len(), 1);

    // Updates keep their id in the rolled-back result.
    let r = sf
        .call(
            "PATCH",
            &format!("{V}/composite/sobjects"),
            Some(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Contact"}, "id": existing, "LastName": "Changed"},
                {"attributes": {"type": "Contact"}, "id": existing, "Email": "broken"},
            ]})),
        )
        .await;
    let results = r.body.as_array().unwrap();
    assert_eq!(results[0]["id"], json!(existing));
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(sf.handle.records("Contact")[0]["LastName"], "Keep");
}

// ---------------------------------------------------------------- limits

#[tokio::test]
async fn daily_limit_header_and_403() {
    let config = EmulatorConfig {
        daily_api_limit: 3,
        ..EmulatorConfig::default()
    };
    let sf = Sf::start(config).await;
    for n in 1..=3 {
        let r = sf.call("GET", &format!("{V}/limits"), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("sforce-limit-info").unwrap(),
            format!("api-usage={n}/3")
        );
        assert_eq!(
            r.body["DailyApiRequests"],
            json!({"Max": 3, "Remaining": 3 - n})
        );
    }
    let r = sf
        .call(
            "POST",
            &format!("{V}/sobjects/Case"),
            Some(json!({"Subject": "x"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(r.header("sforce-limit-info").unwrap(), "api-usage=3/3");
    assert!(sf.handle.records("Case").is_empty());
    assert_eq!(
        sf.handle.stats().rejected.get("REQUEST_LIMIT_EXCEEDED"),
        Some(&1)
    );

    // A fault override raises the limit at runtime.
    sf.handle.set_faults(Faults {
        daily_limit: Some(10),
        ..Faults::default()
    });
    let r = sf.call("GET", &format!("{V}/limits"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("sforce-limit-info").unwrap(), "api-usage=4/10");
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn fail_next_and_error_rate() {
    let sf = Sf::default().await;
    sf.handle.set_faults(Faults {
        fail_next: 2,
        ..Faults::default()
    });
    for _ in 0..2 {
        let r = sf
            .call(
                "POST",
                &format!("{V}/sobjects/Case"),
                Some(json!({"Subject": "x"})),
            )
            .await;
        assert_eq!(r.status, 503);
        assert_eq!(error_code(&r), "SERVER_UNAVAILABLE");
    }
    assert!(sf.handle.records("Case").is_empty());
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        200
    );
    assert_eq!(sf.handle.faults().fail_next, 0);

    sf.handle.set_faults(Faults {
        error_rate: 1.0,
        seed: Some(7),
        ..Faults::default()
    });
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        503
    );
    assert_eq!(
        sf.handle.stats().rejected.get("SERVER_UNAVAILABLE"),
        Some(&3)
    );

    // Same seed, same decisions.
    let run = |seed| {
        let sf = &sf;
        async move {
            sf.handle.set_faults(Faults {
                error_rate: 0.5,
                seed: Some(seed),
                ..Faults::default()
            });
            let mut out = Vec::new();
            for _ in 0..12 {
                out.push(sf.call("GET", &format!("{V}/limits"), None).await.status);
            }
            out
        }
    };
    let a = run(42).await;
    let b = run(42).await;
    assert_eq!(a, b);
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
}

#[tokio::test]
async fn lock_errors_quote_the_15_char_id() {
    let sf = Sf::default().await;
    let case = sf.create("Case", json!({"Subject": "x"})).await;
    sf.handle.set_faults(Faults {
        lock_error_rate: 1.0,
        seed: Some(1),
        ..Faults::default()
    });
    let r = sf
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/{case}"),
            Some(json!({"Subject": "y"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "UNABLE_TO_LOCK_ROW");
    assert_eq!(
        error_message(&r),
        format!(
            "unable to obtain exclusive access to this record or 1 records: {}",
            &case[..15]
        )
    );
    let r = sf
        .call(
            "POST",
            &format!("{V}/sobjects/CaseComment"),
            Some(json!({"ParentId": case, "CommentBody": "c"})),
        )
        .await;
    assert_eq!(
        error_message(&r),
        format!(
            "unable to obtain exclusive access to this record or 1 records: {}",
            &case[..15]
        )
    );
    // Reads never hit lock errors.
    assert_eq!(
        sf.call("GET", &format!("{V}/sobjects/Case/{case}"), None)
            .await
            .status,
        200
    );
    assert_eq!(sf.handle.records("Case")[0]["Subject"], "x");
}

#[tokio::test]
async fn token_expires_after_calls() {
    let sf = Sf::default().await;
    sf.handle.set_faults(Faults {
        token_expires_after_calls: Some(2),
        ..Faults::default()
    });
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        200
    );
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        200
    );
    let r = sf.call("GET", &format!("{V}/limits"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(error_code(&r), "INVALID_SESSION_ID");
    // A fresh token works again.
    let fresh = client_credentials(&sf.http, &sf.url()).await;
    let r = read(
        sf.http
            .get(format!("{}{V}/limits", sf.url()))
            .bearer_auth(fresh)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn latency_is_added() {
    let sf = Sf::default().await;
    sf.handle.set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let start = Instant::now();
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        200
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn dropped_response_still_commits() {
    let sf = Sf::default().await;
    sf.handle.set_faults(Faults {
        drop_next: 1,
        ..Faults::default()
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let result = http
        .post(format!("{}{V}/sobjects/Case", sf.url()))
        .bearer_auth(&sf.token)
        .json(&json!({"Subject": "committed but unanswered", "Handoff_Session_Id__c": "drop-1"}))
        .send()
        .await;
    let err = result.expect_err("the connection must close without a response");
    assert!(!err.is_status(), "{err:?}");
    let cases = sf.handle.records("Case");
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["Subject"], "committed but unanswered");
    assert_eq!(sf.handle.stats().dropped_responses, 1);
    // The retry finds the record by its external id: 200 created:false, no duplicate.
    let r = sf
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/Handoff_Session_Id__c/drop-1"),
            Some(json!({"Subject": "committed but unanswered"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["created"], false);
    assert_eq!(sf.handle.records("Case").len(), 1);

    // Rate-based drops are reproducible with a seed.
    sf.handle.set_faults(Faults {
        drop_response_rate: 1.0,
        seed: Some(3),
        ..Faults::default()
    });
    let r = http
        .get(format!("{}{V}/limits", sf.url()))
        .bearer_auth(&sf.token)
        .send()
        .await;
    assert!(r.is_err());
    sf.handle.set_faults(Faults::default());
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        200
    );
}

#[tokio::test]
async fn admin_endpoints() {
    let sf = Sf::default().await;
    let admin = |p: &str| format!("{}/__emulator/{p}", sf.url());
    let r = read(
        sf.http
            .put(admin("faults"))
            .json(&json!({"fail_next": 1, "latency_ms": 5}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(sf.handle.faults().fail_next, 1);
    let r = read(sf.http.get(admin("faults")).send().await.unwrap()).await;
    assert_eq!(r.body["latency_ms"], 5);
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        503
    );
    let r = read(
        sf.http
            .put(admin("faults"))
            .json(&json!({"error_rate": 2.0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = read(sf.http.get(admin("stats")).send().await.unwrap()).await;
    assert_eq!(r.body["api_calls"], 1);
    assert_eq!(r.body["routes"]["GET limits"], 1);
    assert_eq!(r.body["rejected"]["SERVER_UNAVAILABLE"], 1);
    let r = read(sf.http.post(admin("reset-stats")).send().await.unwrap()).await;
    assert_eq!(r.status, 204);
    assert_eq!(sf.handle.stats().api_calls, 0);
    sf.create("Case", json!({"Subject": "listed"})).await;
    let r = read(sf.http.get(admin("records/case")).send().await.unwrap()).await;
    assert_eq!(r.body[0]["Subject"], "listed");
}

// ---------------------------------------------------------------- query

#[tokio::test]
async fn query_paging_and_shapes() {
    let sf = Sf::default().await;
    for chunk in 0..3 {
        let n = if chunk < 2 { 200 } else { 50 };
        let records: Vec<Value> = (0..n)
            .map(
                |i| json!({"attributes": {"type": "Case"}, "Subject": format!("bulk {chunk}-{i}")}),
            )
            .collect();
        let r = sf
            .call(
                "POST",
                &format!("{V}/composite/sobjects"),
                Some(json!({"allOrNone": true, "records": records})),
            )
            .await;
        assert!(
            r.body
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["success"] == true)
        );
    }
    assert_eq!(sf.handle.records("Case").len(), 450);
    let q = "query?q=SELECT+Id,Subject+FROM+Case";
    let r = sf
        .call_with(
            "GET",
            &format!("{V}/{q}"),
            None,
            &[("Sforce-Query-Options", "batchSize=200")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalSize"], 450);
    assert_eq!(r.body["done"], false);
    assert_eq!(r.body["records"].as_array().unwrap().len(), 200);
    let next = r.body["nextRecordsUrl"].as_str().unwrap().to_string();
    assert!(
        next.starts_with(&format!("{V}/query/")) && next.ends_with("-200"),
        "{next}"
    );
    assert!(!next.contains('?'));
    let r2 = sf.call("GET", &next, None).await;
    assert_eq!(r2.body["totalSize"], 450);
    assert_eq!(r2.body["records"].as_array().unwrap().len(), 200);
    let next2 = r2.body["nextRecordsUrl"].as_str().unwrap().to_string();
    assert!(next2.ends_with("-400"));
    let r3 = sf.call("GET", &next2, None).await;
    assert_eq!(r3.body["done"], true);
    assert!(r3.body.get("nextRecordsUrl").is_none());
    assert_eq!(r3.body["records"].as_array().unwrap().len(), 50);
    let mut all: Vec<Value> = Vec::new();
    for page in [&r, &r2, &r3] {
        all.extend(
            page.body["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["Id"].clone()),
        );
    }
    all.sort_by_key(|v| v.as_str().unwrap().to_string());
    all.dedup();
    assert_eq!(all.len(), 450);

    // Default batch 2000 → one page; below-minimum batch sizes are raised to 200.
    let r = sf.call("GET", &format!("{V}/{q}"), None).await;
    assert_eq!(r.body["done"], true);
    let r = sf
        .call_with(
            "GET",
            &format!("{V}/{q}"),
            None,
            &[("Sforce-Query-Options", "batchSize=10")],
        )
        .await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 200);

    let r = sf
        .call("GET", &format!("{V}/query/01g5g0000000000AAA-200"), None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "INVALID_QUERY_LOCATOR");

    let r = sf
        .call(
            "GET",
            &format!("{V}/query/?q=SELECT+Id+FROM+Case+WHERE+Subject='none'"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"totalSize": 0, "done": true, "records": []}));
    let r = sf
        .call(
            "GET",
            &format!("{V}/query?q=SELECT+COUNT()+FROM+Case"),
            None,
        )
        .await;
    assert_eq!(r.body["totalSize"], 450);
    assert_eq!(r.body["records"], json!([]));
    let r = sf
        .call("GET", &format!("{V}/query?q=SELEC+Id+FROM+Case"), None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "MALFORMED_QUERY");
    let r = sf
        .call("GET", &format!("{V}/query?q=SELECT+Foo+FROM+Case"), None)
        .await;
    assert_eq!(error_code(&r), "INVALID_FIELD");
    let r = sf
        .call("GET", &format!("{V}/query?q=SELECT+Id+FROM+Whizbang"), None)
        .await;
    assert_eq!(error_code(&r), "INVALID_TYPE");
    let r = sf.call("GET", &format!("{V}/query"), None).await;
    assert_eq!(error_code(&r), "MALFORMED_QUERY");
}

#[tokio::test]
async fn query_relationships_and_query_all() {
    let sf = Sf::default().await;
    let contact = sf
        .create(
            "Contact",
            json!({"LastName": "Ann", "Email": "ann@example.com"}),
        )
        .await;
    let case = sf
        .create(
            "Case",
            json!({"Subject": "rel", "ContactId": contact, "Comments": "internal note"}),
        )
        .await;
    sf.create(
        "CaseComment",
        json!({"ParentId": case, "CommentBody": "public", "IsPublished": true}),
    )
    .await;
    let q = "SELECT Id, CaseNumber, Contact.Email, (SELECT CommentBody FROM CaseComments WHERE IsPublished = true) FROM Case WHERE CaseNumber = '00001001' AND Contact.Email = 'ANN@example.com'";
    let r = sf
        .call("GET", &format!("{V}/query?q={}", urlencode(q)), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalSize"], 1);
    let rec = &r.body["records"][0];
    assert_eq!(
        rec["attributes"]["url"],
        json!(format!("{V}/sobjects/Case/{case}"))
    );
    assert_eq!(rec["Contact"]["Email"], "ann@example.com");
    assert_eq!(rec["CaseComments"]["totalSize"], 1);
    assert_eq!(rec["CaseComments"]["records"][0]["CommentBody"], "public");
    // Writing Case.Comments added an internal comment too.
    assert_eq!(sf.handle.records("CaseComment").len(), 2);

    sf.call("DELETE", &format!("{V}/sobjects/Contact/{contact}"), None)
        .await;
    let r = sf
        .call(
            "GET",
            &format!("{V}/query?q={}", urlencode("SELECT Id FROM Contact")),
            None,
        )
        .await;
    assert_eq!(r.body["totalSize"], 0);
    let r = sf
        .call(
            "GET",
            &format!(
                "{V}/queryAll?q={}",
                urlencode("SELECT Id, IsDeleted FROM Contact")
            ),
            None,
        )
        .await;
    assert_eq!(r.body["totalSize"], 1);
    assert_eq!(r.body["records"][0]["IsDeleted"], true);
    // The lookup to the deleted contact was cleared.
    let r = sf
        .call("GET", &format!("{V}/sobjects/Case/{case}"), None)
        .await;
    assert_eq!(r.body["ContactId"], Value::Null);
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

// ---------------------------------------------------------------- flows

#[tokio::test]
async fn configured_flow_creates_cases() {
    let mut config = EmulatorConfig::default();
    let mut flow = FlowConfig {
        name: "Handoff_Create_Case".into(),
        creates: "Case".into(),
        mapping: Default::default(),
        defaults: Default::default(),
    };
    flow.mapping.insert("subject".into(), "Subject".into());
    flow.mapping.insert("email".into(), "SuppliedEmail".into());
    flow.defaults.insert("Origin".into(), json!("Chat"));
    config.flows.push(flow);
    let sf = Sf::start(config).await;
    let path = format!("{V}/actions/custom/flow/Handoff_Create_Case");
    let r = sf
        .call(
            "POST",
            &path,
            Some(json!({"inputs": [{"subject": "From flow", "email": "ann@example.com"}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let item = &r.body[0];
    assert_eq!(item["isSuccess"], true);
    assert_eq!(item["actionName"], "Handoff_Create_Case");
    assert_eq!(item["outputValues"]["CaseNumber"], "00001001");
    assert_eq!(item["outputValues"]["Flow__InterviewStatus"], "Finished");
    let id = item["outputValues"]["CaseId"].as_str().unwrap();
    let case = sf
        .call("GET", &format!("{V}/sobjects/Case/{id}"), None)
        .await
        .body;
    assert_eq!(case["Origin"], "Chat");
    assert_eq!(case["SuppliedEmail"], "ann@example.com");

    let r = sf
        .call(
            "POST",
            &path,
            Some(json!({"inputs": [{"subject": "ok"}, {"email": "not an email"}]})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body[0]["isSuccess"], true);
    assert_eq!(r.body[1]["isSuccess"], false);
    assert_eq!(r.body[1]["errors"][0]["statusCode"], "UNKNOWN_EXCEPTION");
    assert_eq!(sf.handle.records("Case").len(), 2);

    let r = sf
        .call(
            "POST",
            &format!("{V}/actions/custom/flow/Unknown"),
            Some(json!({"inputs": [{}]})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(error_code(&r), "NOT_FOUND");
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let sf = Sf::default().await;
    let url = sf.url();
    sf.handle.shutdown().await;
    let r = reqwest::Client::new()
        .get(format!("{url}/services/data/"))
        .send()
        .await;
    assert!(r.is_err());
}

#[tokio::test]
async fn sessions_expire_and_can_be_revoked() {
    let config = EmulatorConfig {
        session_timeout_secs: 1,
        ..EmulatorConfig::default()
    };
    let sf = Sf::start(config).await;
    assert_eq!(
        sf.call("GET", &format!("{V}/limits"), None).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = sf.call("GET", &format!("{V}/limits"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(error_code(&r), "INVALID_SESSION_ID");

    let token = client_credentials(&sf.http, &sf.url()).await;
    let r = sf
        .http
        .post(format!("{}/services/oauth2/revoke", sf.url()))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = read(
        sf.http
            .get(format!("{}{V}/limits", sf.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        sf.handle.stats().rejected.get("INVALID_SESSION_ID"),
        Some(&2)
    );
}

#[tokio::test]
async fn composite_rollback_restores_deletes_and_cascades() {
    let sf = Sf::default().await;
    let account = sf.create("Account", json!({"Name": "Acme"})).await;
    let contact = sf
        .create("Contact", json!({"LastName": "Ann", "AccountId": account}))
        .await;
    let case = sf
        .create("Case", json!({"Subject": "keep me", "AccountId": account}))
        .await;
    sf.create(
        "CaseComment",
        json!({"ParentId": case, "CommentBody": "c1"}),
    )
    .await;
    sf.create(
        "CaseComment",
        json!({"ParentId": case, "CommentBody": "c2"}),
    )
    .await;
    let before_cases = sf.handle.records("Case");
    let before_comments = sf.handle.records("CaseComment");
    let before_contacts = sf.handle.records("Contact");

    let body = json!({
        "allOrNone": true,
        "compositeRequest": [
            {"method": "DELETE", "url": format!("{V}/sobjects/Case/{case}"), "referenceId": "delCase"},
            {"method": "DELETE", "url": format!("{V}/sobjects/Account/{account}"), "referenceId": "delAccount"},
            {"method": "POST", "url": format!("{V}/composite/sobjects"), "referenceId": "coll",
             "body": {"allOrNone": false, "records": [{"attributes": {"type": "Case"}, "Subject": "new"}]}},
            {"method": "PATCH", "url": format!("{V}/sobjects/Contact/{contact}"), "referenceId": "bad",
             "body": {"LastName": null}},
        ]
    });
    let r = sf.call("POST", &format!("{V}/composite"), Some(body)).await;
    let subs = r.body["compositeResponse"].as_array().unwrap();
    assert_eq!(subs[3]["httpStatusCode"], 400);
    assert_eq!(subs[3]["body"][0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(subs[0]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(sf.handle.records("Case"), before_cases);
    assert_eq!(sf.handle.records("CaseComment"), before_comments);
    assert_eq!(sf.handle.records("Contact"), before_contacts);
    assert_eq!(sf.handle.records("Account").len(), 1);
    let r = sf
        .call("GET", &format!("{V}/sobjects/Case/{case}"), None)
        .await;
    assert_eq!(r.status, 200);
    let r = sf
        .call(
            "GET",
            &format!("{V}/queryAll?q=SELECT+Id+FROM+Case+WHERE+IsDeleted=true"),
            None,
        )
        .await;
    assert_eq!(r.body["totalSize"], 0, "no phantom deleted rows");

    // The rolled-back ids and case numbers are handed out again.
    let next = sf.create("Case", json!({"Subject": "after"})).await;
    let r = sf
        .call("GET", &format!("{V}/sobjects/Case/{next}"), None)
        .await;
    assert_eq!(r.body["CaseNumber"], "00001002");
}
