//! The client against the project's Salesforce emulator, over real sockets: OAuth grants,
//! token reuse, single-flight refresh on 401, record calls, upsert status codes, SOQL
//! escaping and paging, composite, collections, flows, error shapes and fault handling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use salesforce::{
    Client, ClientConfig, CompositeRequest, Credentials, Error, ErrorClass, SalesforceId,
    UpsertResult, soql,
};
use serde_json::{Value, json};
use sf_emulator::{EmulatorConfig, EmulatorHandle, Faults};
use tokio::net::TcpListener;

const CLIENT_ID: &str = "handoff-local-client";
const CLIENT_SECRET: &str = "handoff-local-secret";
const USERNAME: &str = "integration@handoff.local";
const PASSWORD: &str = "handoff-password";
const SECURITY_TOKEN: &str = "handoff-token";
const EXT_FIELD: &str = "Handoff_Session_Id__c";
const PRIVATE_KEY: &str = include_str!("fixtures/test-only-rsa-private.pem");
const PUBLIC_KEY: &str = include_str!("fixtures/test-only-rsa-public.pem");

async fn start(config: EmulatorConfig) -> EmulatorHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    sf_emulator::spawn(config, listener).await.unwrap()
}

fn client_credentials() -> Credentials {
    Credentials::ClientCredentials {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
    }
}

fn config_for(emulator: &EmulatorHandle, credentials: Credentials) -> ClientConfig {
    let mut config = ClientConfig::new(emulator.url(), credentials);
    config.timeout = Duration::from_secs(10);
    config
}

fn client_for(emulator: &EmulatorHandle) -> Client {
    Client::new(config_for(emulator, client_credentials())).unwrap()
}

/// The default emulator config with extra JSON merged in (kept to serde so the test does not
/// depend on how the emulator's config types are re-exported).
fn emulator_config(edit: impl FnOnce(&mut Value)) -> EmulatorConfig {
    let mut value = serde_json::to_value(EmulatorConfig::default()).unwrap();
    edit(&mut value);
    serde_json::from_value(value).unwrap()
}

fn case(subject: &str) -> Value {
    json!({
        "Subject": subject,
        "Description": "Summary of the conversation",
        "Origin": "Web",
        "SuppliedEmail": "ann@example.com",
        "SuppliedName": "Ann",
        "Case_From__c": "opencx",
    })
}

#[tokio::test]
async fn token_is_fetched_once_and_reused() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);

    let created = client
        .create("Case", &case("Printer broken"))
        .await
        .unwrap();
    assert!(created.success);
    let id = created.id.unwrap();
    assert_eq!(id.key_prefix(), "500");

    let record = client
        .get("Case", &id, Some(&["Subject", "CaseNumber", "Status"]))
        .await
        .unwrap();
    assert_eq!(record["Subject"], "Printer broken");
    assert!(record["CaseNumber"].as_str().is_some_and(|n| !n.is_empty()));

    client
        .update("Case", &id, &json!({"Priority": "High"}))
        .await
        .unwrap();
    let clone = client.clone();
    let again = clone.get("Case", &id, None).await.unwrap();
    assert_eq!(again["Priority"], "High");
    // The 15-character form addresses the same record.
    let short = SalesforceId::parse(id.to_15()).unwrap();
    assert_eq!(
        clone.get("Case", &short, Some(&["Id"])).await.unwrap()["Id"],
        id.as_str()
    );

    let stats = client.stats();
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.api_calls, 5);
    let server = emulator.stats();
    assert_eq!(server.token_requests, 1);
    assert_eq!(server.api_calls, 5);

    let limits = client.limit_info().expect("Sforce-Limit-Info was recorded");
    let (used, max) = limits.api_usage.unwrap();
    assert!((4..=5).contains(&used), "api-usage {used}");
    assert_eq!(max, 100_000);
}

#[tokio::test]
async fn every_grant_type_authenticates() {
    let emulator = start(emulator_config(|c| {
        c["connected_apps"][0]["jwt_public_key_pem"] = json!(PUBLIC_KEY);
        c["connected_apps"][0]["refresh_tokens"] =
            json!([{"token": "handoff-refresh", "username": USERNAME}]);
    }))
    .await;
    let grants = [
        client_credentials(),
        Credentials::Password {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            username: USERNAME.into(),
            password: PASSWORD.into(),
            security_token: SECURITY_TOKEN.into(),
        },
        Credentials::JwtBearer {
            client_id: CLIENT_ID.into(),
            username: USERNAME.into(),
            private_key_pem: PRIVATE_KEY.into(),
            audience: "https://login.salesforce.com".into(),
        },
        Credentials::RefreshToken {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_token: "handoff-refresh".into(),
        },
    ];
    for credentials in grants {
        let kind = credentials.kind();
        let client = Client::new(config_for(&emulator, credentials)).unwrap();
        let page = client
            .query("SELECT Id FROM Case LIMIT 1")
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(page.done, "{kind}");
        assert_eq!(client.stats().token_requests, 1, "{kind}");
    }
    assert_eq!(emulator.stats().tokens_issued, 4);
}

#[tokio::test]
async fn refused_grants_are_oauth_errors() {
    let emulator = start(EmulatorConfig::default()).await;
    let cases = [
        (
            Credentials::ClientCredentials {
                client_id: CLIENT_ID.into(),
                client_secret: "wrong-secret".into(),
            },
            "invalid_client",
        ),
        (
            Credentials::Password {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                username: USERNAME.into(),
                // Without the security token the password is wrong.
                password: PASSWORD.into(),
                security_token: "".into(),
            },
            "invalid_grant",
        ),
        (
            Credentials::JwtBearer {
                client_id: CLIENT_ID.into(),
                username: USERNAME.into(),
                private_key_pem: PRIVATE_KEY.into(),
                audience: "https://login.salesforce.com".into(),
            },
            // The default app has no certificate uploaded.
            "invalid_grant",
        ),
    ];
    for (credentials, expected) in cases {
        let client = Client::new(config_for(&emulator, credentials)).unwrap();
        let err = client.authenticate().await.unwrap_err();
        let Error::OAuth { status, error, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*status, 400);
        assert_eq!(error, expected);
        assert_eq!(err.class(), ErrorClass::Auth);
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("wrong-secret") && !shown.contains(PASSWORD),
            "{shown}"
        );
        // A refused grant is not cached: the next call asks again.
        assert!(client.authenticate().await.is_err());
        assert_eq!(client.stats().token_requests, 2);
        assert_eq!(client.stats().api_calls, 0);
    }
}

#[tokio::test]
async fn concurrent_401s_share_one_refresh() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let id = client
        .create("Case", &case("shared"))
        .await
        .unwrap()
        .id
        .unwrap();
    // From now on a token dies after 20 API calls; the first one has used 1.
    emulator.set_faults(Faults {
        token_expires_after_calls: Some(20),
        ..Faults::default()
    });
    for _ in 0..19 {
        client.get("Case", &id, Some(&["Id"])).await.unwrap();
    }
    assert_eq!(client.stats().token_requests, 1);

    // 12 callers hit the dead token at once (more than the concurrency limit of 8).
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let client = client.clone();
        let id = id.clone();
        tasks.spawn(async move { client.get("Case", &id, Some(&["Subject"])).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap()["Subject"], "shared");
    }
    let stats = client.stats();
    assert_eq!(stats.token_requests, 2, "exactly one refresh");
    assert_eq!(emulator.stats().token_requests, 2);
    // Callers that got a 401 were retried once; callers that started after the refresh
    // went straight to the new token.
    let rejected = *emulator.stats().rejected.get("INVALID_SESSION_ID").unwrap();
    assert!((1..=12).contains(&rejected), "{rejected}");
    assert_eq!(stats.api_calls, 1 + 19 + 12 + rejected);
}

#[tokio::test]
async fn a_failed_refresh_is_reported_and_the_client_recovers() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    client.authenticate().await.unwrap();
    // The token dies now, and the token endpoint fails once.
    emulator.set_faults(Faults {
        token_expires_after_calls: Some(0),
        token_error_next: 1,
        ..Faults::default()
    });
    let err = client.query("SELECT Id FROM Case").await.unwrap_err();
    assert!(matches!(err, Error::OAuth { status: 503, .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(
        client.stats(),
        salesforce::ClientStats {
            api_calls: 1,
            token_requests: 2
        }
    );

    // The rejected token is not handed out again: the next call fetches a new one first.
    emulator.set_faults(Faults::default());
    client.query("SELECT Id FROM Case").await.unwrap();
    assert_eq!(
        client.stats(),
        salesforce::ClientStats {
            api_calls: 2,
            token_requests: 3
        }
    );

    // A token that is rejected again right after the refresh is an Auth error, after
    // exactly one refresh and one retry.
    emulator.set_faults(Faults {
        token_expires_after_calls: Some(0),
        ..Faults::default()
    });
    let err = client.query("SELECT Id FROM Case").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.code(), Some("INVALID_SESSION_ID"));
    assert_eq!(err.class(), ErrorClass::Auth);
    assert_eq!(
        client.stats(),
        salesforce::ClientStats {
            api_calls: 4,
            token_requests: 4
        }
    );
}

#[tokio::test]
async fn token_endpoint_outage_is_retryable() {
    let emulator = start(EmulatorConfig::default()).await;
    emulator.set_faults(Faults {
        token_error_next: 1,
        ..Faults::default()
    });
    let client = client_for(&emulator);
    let err = client.authenticate().await.unwrap_err();
    assert!(matches!(err, Error::OAuth { status: 503, .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    client.authenticate().await.unwrap();
    assert_eq!(client.stats().token_requests, 2);
}

#[tokio::test]
async fn upsert_reports_created_updated_and_multiple_matches() {
    let emulator = start(emulator_config(|c| {
        c["custom_fields"].as_array_mut().unwrap().push(json!({
            "object": "Case", "name": "Legacy_Ref__c", "label": "Legacy Ref", "kind": "string",
            "length": 40, "external_id": true, "unique": false
        }));
    }))
    .await;
    let client = client_for(&emulator);
    let session = "sess:42/a b?c#d%e.é";

    let first = client
        .upsert("Case", EXT_FIELD, session, &case("first"))
        .await
        .unwrap();
    let UpsertResult::Created { id } = &first else {
        panic!("{first:?}")
    };
    // The external Id went into the path, escaped, and landed on the record intact.
    let record = client.get("Case", id, Some(&[EXT_FIELD])).await.unwrap();
    assert_eq!(record[EXT_FIELD], session);

    // The body may repeat the external-Id field: the client moves it to the path.
    let mut body = case("second");
    body[EXT_FIELD] = json!(session);
    let second = client
        .upsert("Case", EXT_FIELD, session, &body)
        .await
        .unwrap();
    assert_eq!(
        second,
        UpsertResult::Updated {
            id: Some(id.clone())
        }
    );
    assert!(!second.was_created());
    assert_eq!(emulator.records("Case").len(), 1);

    // Before v46.0 an update answers 204 without a body.
    let mut old = config_for(&emulator, client_credentials());
    old.api_version = "v45.0".into();
    let old = Client::new(old).unwrap();
    let third = old
        .upsert("Case", EXT_FIELD, session, &case("third"))
        .await
        .unwrap();
    assert_eq!(third, UpsertResult::Updated { id: None });
    assert_eq!(
        client.get("Case", id, Some(&["Subject"])).await.unwrap()["Subject"],
        "third"
    );

    // Two records share a non-unique external Id: 300.
    for subject in ["dup 1", "dup 2"] {
        let mut body = case(subject);
        body["Legacy_Ref__c"] = json!("L-1");
        client.create("Case", &body).await.unwrap();
    }
    let err = client
        .upsert("Case", "Legacy_Ref__c", "L-1", &case("which?"))
        .await
        .unwrap_err();
    let Error::MultipleMatches(urls) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(urls.len(), 2);
    assert!(
        urls.iter().all(|u| u.contains("/sobjects/Case/")),
        "{urls:?}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);

    // An unknown external-Id field is a 404 NOT_FOUND.
    let err = client
        .upsert("Case", "Nope__c", "x", &case("x"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn soql_literals_survive_hostile_values() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let values = [
        "O'Brien",
        "back\\slash",
        "quote\" and ' both",
        "' OR Subject != '",
        "line\nbreak\ttab",
        "100% _literal_",
        "ünï😀",
    ];
    for (i, value) in values.iter().enumerate() {
        let session = format!("soql-{i}");
        let mut body = case(value);
        body["SuppliedName"] = json!(value);
        client
            .upsert("Case", EXT_FIELD, &session, &body)
            .await
            .unwrap();
    }
    for (i, value) in values.iter().enumerate() {
        let statement = format!(
            "SELECT Id, {EXT_FIELD}, SuppliedName FROM Case WHERE SuppliedName = {}",
            soql::quote(value).unwrap()
        );
        let page = client.query(&statement).await.unwrap();
        assert_eq!(page.total_size, 1, "{value:?}");
        assert_eq!(page.records[0][EXT_FIELD], format!("soql-{i}"));
        assert_eq!(page.records[0]["SuppliedName"], *value);
    }
    // LIKE with escaped wildcards matches only the literal text.
    let like = format!(
        "SELECT Id FROM Case WHERE SuppliedName LIKE '%{}%'",
        soql::escape_like("% _lit").unwrap()
    );
    assert_eq!(client.query(&like).await.unwrap().total_size, 1);
    let unescaped = "SELECT Id FROM Case WHERE SuppliedName LIKE '%_%'";
    assert_eq!(
        client.query(unescaped).await.unwrap().total_size,
        values.len() as u64
    );
    // Control characters never reach Salesforce.
    assert!(soql::quote("bell\u{7}").is_err());
}

#[tokio::test]
async fn query_paging_follows_next_records_url() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let mut created = 0;
    while created < 2_050 {
        let batch: Vec<Value> = (created..(created + 200).min(2_050))
            .map(|i| {
                json!({"attributes": {"type": "Case"}, "Subject": format!("bulk {i}"),
                       EXT_FIELD: format!("bulk-{i}")})
            })
            .collect();
        let n = batch.len();
        let results = client.collections_create(batch, true).await.unwrap();
        assert!(results.iter().all(|r| r.success && r.id.is_some()));
        created += n;
    }

    let calls_before = client.stats().api_calls;
    let all = client
        .query_all_pages("SELECT Id, Subject FROM Case WHERE Subject LIKE 'bulk %'")
        .await
        .unwrap();
    assert_eq!(all.len(), 2_050);
    assert_eq!(
        client.stats().api_calls - calls_before,
        2,
        "default pages hold 2000"
    );
    let mut ids: Vec<&str> = all.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2_050, "no record twice");

    let first = client
        .query_with_batch_size("SELECT Id FROM Case ORDER BY Subject", 200)
        .await
        .unwrap();
    assert_eq!(first.total_size, 2_050);
    assert!(!first.done);
    assert_eq!(first.records.len(), 200);
    let next = first.next_records_url.unwrap();
    assert!(next.starts_with("/services/data/"), "{next}");
    let second = client.query_more(&next).await.unwrap();
    assert_eq!(second.records.len(), 200);
    assert_ne!(second.records[0]["Id"], first.records[0]["Id"]);

    // The bearer token is never sent to another host.
    let err = client
        .query_more("https://elsewhere.example/services/data/v66.0/query/x-200")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn composite_creates_case_and_comments_in_one_call() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let mut request = CompositeRequest::new(true);
    request
        .upsert(
            "Case",
            EXT_FIELD,
            "sess-composite",
            case("composite"),
            "refCase",
        )
        .unwrap();
    for part in 1..=3 {
        request
            .create(
                "CaseComment",
                json!({"ParentId": "@{refCase.id}", "IsPublished": false,
                       "CommentBody": format!("Transcript {part}/3")}),
                &format!("refComment{part}"),
            )
            .unwrap();
    }
    let calls_before = client.stats().api_calls;
    let response = client.composite(&request).await.unwrap();
    assert_eq!(client.stats().api_calls - calls_before, 1);
    assert!(response.first_failure().is_none(), "{response:?}");
    let case_id = response.get("refCase").unwrap().id().unwrap();
    assert_eq!(response.get("refCase").unwrap().http_status_code, 201);
    let comments = emulator.records("CaseComment");
    assert_eq!(comments.len(), 3);
    assert!(comments.iter().all(|c| c["ParentId"] == case_id.as_str()));

    // Same again, but one comment is too long: all or none.
    let mut failing = CompositeRequest::new(true);
    failing
        .upsert(
            "Case",
            EXT_FIELD,
            "sess-rollback",
            case("rollback"),
            "refCase",
        )
        .unwrap()
        .create(
            "CaseComment",
            json!({"ParentId": "@{refCase.id}", "CommentBody": "é".repeat(2_001)}),
            "refTooLong",
        )
        .unwrap()
        .create(
            "CaseComment",
            json!({"ParentId": "@{refCase.id}", "CommentBody": "fine"}),
            "refFine",
        )
        .unwrap();
    let response = client.composite(&failing).await.unwrap();
    let err = response.first_failure().unwrap();
    assert_eq!(err.code(), Some("STRING_TOO_LONG"), "{response:?}");
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert_eq!(response.get("refFine").unwrap().http_status_code, 400);
    assert_eq!(emulator.records("CaseComment").len(), 3, "rolled back");
    assert_eq!(emulator.records("Case").len(), 1, "rolled back");

    // Past 25 subrequests the client refuses before sending anything.
    let mut big = CompositeRequest::new(true);
    for i in 0..25 {
        big.create("CaseComment", json!({"CommentBody": "x"}), &format!("r{i}"))
            .unwrap();
    }
    assert!(matches!(
        big.create("CaseComment", json!({}), "r25"),
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn collections_report_per_record_errors() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let records = vec![
        json!({"attributes": {"type": "Case"}, "Subject": "ok"}),
        json!({"attributes": {"type": "Case"}, "Subject": "x".repeat(300)}),
    ];
    let results = client
        .collections_create(records.clone(), false)
        .await
        .unwrap();
    assert!(results[0].success && results[0].id.is_some());
    assert!(!results[1].success && results[1].id.is_none());
    assert_eq!(results[1].errors[0].error_code, "STRING_TOO_LONG");
    assert_eq!(results[1].errors[0].fields, vec!["Subject".to_owned()]);

    let rolled = client.collections_create(records, true).await.unwrap();
    assert_eq!(
        rolled[0].errors[0].error_code,
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(emulator.records("Case").len(), 1);

    let untyped = client
        .collections_create(vec![json!({"Subject": "no type"})], false)
        .await;
    assert!(matches!(untyped, Err(Error::Invalid(_))));
    let too_many = client
        .collections_create(vec![json!({"attributes": {"type": "Case"}}); 201], false)
        .await;
    assert!(matches!(too_many, Err(Error::Invalid(_))));
}

#[tokio::test]
async fn flows_run_per_input_and_failures_are_errors() {
    let emulator = start(emulator_config(|c| {
        c["flows"] = json!([{
            "name": "Create_Support_Case",
            "creates": "Case",
            "mapping": {"subject": "Subject", "email": "SuppliedEmail"},
            "defaults": {"Origin": "Web"}
        }]);
    }))
    .await;
    let client = client_for(&emulator);
    let results = client
        .invoke_flow(
            "Create_Support_Case",
            vec![
                json!({"subject": "one", "email": "ann@example.com"}),
                json!({"subject": "two", "email": "bob@example.com"}),
            ],
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r["isSuccess"] == true));
    let case_id = results[0]["outputValues"]["CaseId"].as_str().unwrap();
    let case_id = SalesforceId::parse(case_id).unwrap();
    let record = client
        .get("Case", &case_id, Some(&["Subject", "Origin"]))
        .await
        .unwrap();
    assert_eq!(record["Subject"], "one");
    assert_eq!(record["Origin"], "Web");

    // One bad input makes the whole answer a 400 with the SaveResult-style errors.
    let err = client
        .invoke_flow(
            "Create_Support_Case",
            vec![
                json!({"subject": "ok"}),
                json!({"subject": "x".repeat(300)}),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("UNKNOWN_EXCEPTION"));
    assert_eq!(err.class(), ErrorClass::Permanent);

    let err = client
        .invoke_flow("No_Such_Flow", vec![json!({})])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NOT_FOUND"));
    assert!(matches!(
        client.invoke_flow("bad/name", vec![json!({})]).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn rest_errors_are_parsed_and_classified() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);

    let err = client
        .create("Case", &json!({"Subject": "s", "NoSuchField__c": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("INVALID_FIELD"));
    assert_eq!(err.class(), ErrorClass::Permanent);

    let missing = SalesforceId::parse("500Hu000020yLuH").unwrap();
    let err = client.get("Case", &missing, None).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), Some("NOT_FOUND"));

    let err = client.query("SELECT Nope FROM Case").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.code().is_some());

    // 503 SERVER_UNAVAILABLE: retryable, and the client itself does not retry.
    emulator.set_faults(Faults {
        fail_next: 1,
        ..Faults::default()
    });
    let calls = client.stats().api_calls;
    let err = client.create("Case", &case("503")).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(client.stats().api_calls - calls, 1);

    emulator.set_faults(Faults {
        lock_error_rate: 1.0,
        seed: Some(1),
        ..Faults::default()
    });
    let err = client.create("Case", &case("locked")).await.unwrap_err();
    assert_eq!(err.code(), Some("UNABLE_TO_LOCK_ROW"));
    assert_eq!(err.class(), ErrorClass::Retryable);

    emulator.set_faults(Faults {
        daily_limit: Some(0),
        ..Faults::default()
    });
    let err = client.query("SELECT Id FROM Case").await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(err.class(), ErrorClass::RateLimit);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains('!'), "no token in errors: {shown}");
}

#[tokio::test]
async fn dropped_responses_are_ambiguous_and_refused_connections_are_not() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    client.authenticate().await.unwrap();
    emulator.set_faults(Faults {
        drop_next: 1,
        ..Faults::default()
    });
    let err = client.create("Case", &case("committed")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_ambiguous());
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(emulator.records("Case").len(), 1, "the create committed");

    // Latency past the client's timeout: also ambiguous.
    emulator.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    let mut config = config_for(&emulator, client_credentials());
    config.timeout = Duration::from_millis(500);
    let impatient = Client::new(config).unwrap();
    impatient.authenticate().await.unwrap();
    let err = impatient.query("SELECT Id FROM Case").await.unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    emulator.set_faults(Faults::default());

    // Nothing listens: the request was never sent. The port stays bound (without listening)
    // for the whole check, so no other process can take it and answer: connects are refused.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = reserved.local_addr().unwrap();
    let nowhere = Client::new(ClientConfig::new(
        format!("http://{addr}"),
        client_credentials(),
    ))
    .unwrap();
    let err = nowhere.authenticate().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                request_sent: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_ambiguous());
    assert_eq!(err.class(), ErrorClass::Retryable);
    drop(reserved);
}

#[tokio::test]
async fn concurrency_is_capped() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut config = config_for(&emulator, client_credentials());
    config.max_concurrency = 2;
    let client = Client::new(config).unwrap();
    client.authenticate().await.unwrap();
    emulator.set_faults(Faults {
        latency_ms: 200,
        ..Faults::default()
    });
    let started = Instant::now();
    let client = Arc::new(client);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = Arc::clone(&client);
        tasks.spawn(async move { client.query("SELECT Id FROM Case").await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    // 6 requests, 2 at a time, 200 ms each: at least 3 rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}

/// The token's identity names the org and the integration user, and describe
/// reports the external-id field as the gateway needs it.
#[tokio::test]
async fn identity_and_describe() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let (org, user) = client.identity().await.unwrap().expect("identity URL");
    assert!(org.starts_with("00D") && org.len() == 18, "{org}");
    assert!(user.starts_with("005") && user.len() == 18, "{user}");
    let describe = client.describe("Case").await.unwrap();
    let fields = describe["fields"].as_array().unwrap();
    let external = fields
        .iter()
        .find(|f| f["name"] == "Handoff_Session_Id__c")
        .expect("external-id field");
    assert_eq!(external["externalId"], true);
    assert_eq!(external["unique"], true);
    let err = client.describe("NoSuchObject__c").await.unwrap_err();
    assert!(
        err.to_string().contains("NOT_FOUND") || err.to_string().contains("INVALID_TYPE"),
        "{err}"
    );
}

/// Switching credentials at runtime: every clone uses the new grant from the next call on,
/// the old cached token is dropped, bad credentials are refused and change nothing, and the
/// token-request counter keeps counting across the switch.
#[tokio::test]
async fn credentials_switch_at_runtime() {
    let emulator = start(emulator_config(|c| {
        c["connected_apps"][0]["refresh_tokens"] =
            json!([{"token": "handoff-refresh", "username": USERNAME}]);
    }))
    .await;
    let client = Client::new(config_for(
        &emulator,
        Credentials::ClientCredentials {
            client_id: CLIENT_ID.into(),
            client_secret: "wrong-secret".into(),
        },
    ))
    .unwrap();
    let clone = client.clone();
    let err = client
        .query("SELECT Id FROM Case LIMIT 1")
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");

    let bad_jwt = Credentials::JwtBearer {
        client_id: CLIENT_ID.into(),
        username: USERNAME.into(),
        private_key_pem: "not a key".into(),
        audience: "https://login.salesforce.com".into(),
    };
    assert!(matches!(
        client.set_credentials(&bad_jwt),
        Err(Error::Invalid(_))
    ));
    assert!(client.query("SELECT Id FROM Case LIMIT 1").await.is_err());

    client
        .set_credentials(&Credentials::RefreshToken {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_token: "handoff-refresh".into(),
        })
        .unwrap();
    let page = clone.query("SELECT Id FROM Case LIMIT 1").await.unwrap();
    assert!(page.done);
    // Two failed client-credentials attempts, then one refresh-token grant.
    assert_eq!(client.stats().token_requests, 3);
    assert_eq!(emulator.stats().tokens_issued, 1);

    // Switching again drops the cached token: the next call asks for a new one.
    client.set_credentials(&client_credentials()).unwrap();
    clone.query("SELECT Id FROM Case LIMIT 1").await.unwrap();
    assert_eq!(client.stats().token_requests, 4);
    assert_eq!(emulator.stats().tokens_issued, 2);
}
