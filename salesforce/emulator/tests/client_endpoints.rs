//! Endpoints and fields common Salesforce clients use: SOAP partner `login()`, the identity URL,
//! the Organization object, CreatedBy/LastModifiedBy, FIELDS(), updated/deleted, the standard
//! limits, and describe field attributes.

mod common;

use chrono::{Duration, Utc};
use common::{Client, V, read, spawn};
use serde_json::{Value, json};
use sf_emulator::EmulatorConfig;

fn login_envelope(username: &str, password: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><env:Header><urn:CallOptions><urn:client>test</urn:client></urn:CallOptions></env:Header><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>{username}</n1:username><n1:password>{password}</n1:password></n1:login></env:Body></env:Envelope>"#
    )
}

fn between<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

async fn soap(http: &reqwest::Client, url: &str, version: &str, body: String) -> (u16, String) {
    let r = http
        .post(format!("{url}/services/Soap/u/{version}"))
        .header("Content-Type", "text/xml")
        .header("SOAPAction", "login")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Scripts that log in with the SOAP partner `login()` (username, password + security token)
/// could not use the emulator. The login answers `serverUrl` on the public URL, a `sessionId`
/// that works as a REST Bearer token, the `userId` and the org id; a wrong password is the
/// documented `INVALID_LOGIN` LoginFault (HTTP 500); from API 65.0 `login()` is refused.
#[tokio::test]
async fn soap_partner_login() {
    let config = EmulatorConfig {
        public_url: None,
        ..EmulatorConfig::default()
    };
    let sf = spawn(config).await;
    let http = reqwest::Client::new();
    let (status, xml) = soap(
        &http,
        &sf.url(),
        "62.0",
        login_envelope("integration@handoff.local", "handoff-passwordhandoff-token"),
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let org15 = &sf.config().org_id;
    assert_eq!(
        between(&xml, "serverUrl"),
        Some(format!("{}/services/Soap/u/62.0/{org15}", sf.url()).as_str())
    );
    let session = between(&xml, "sessionId").unwrap();
    assert!(session.starts_with(&format!("{org15}!")));
    let user_id = between(&xml, "userId").unwrap();
    assert!(user_id.starts_with("005") && user_id.len() == 18);
    assert_eq!(
        between(&xml, "organizationId"),
        Some(sf_emulator::ids::org_id18(org15).as_str())
    );
    let c = Client {
        http: http.clone(),
        base: sf.url(),
        token: session.to_string(),
    };
    assert_eq!(c.get(&format!("{V}/limits")).await.status, 200);

    let (status, xml) = soap(
        &http,
        &sf.url(),
        "62.0",
        login_envelope("integration@handoff.local", "handoff-password"),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(between(&xml, "sf:exceptionCode"), Some("INVALID_LOGIN"));
    assert_eq!(between(&xml, "faultcode"), Some("sf:INVALID_LOGIN"));

    let (status, xml) = soap(
        &http,
        &sf.url(),
        "65.0",
        login_envelope("integration@handoff.local", "handoff-passwordhandoff-token"),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        between(&xml, "sf:exceptionCode"),
        Some("UNSUPPORTED_API_VERSION")
    );
    sf.shutdown().await;
}

/// The token's `id` URL pointed nowhere. It now answers the identity of the token's user with
/// Bearer auth; without a valid token it is 403 `Bad_OAuth_Token`, for another id 404 `Bad_Id`.
#[tokio::test]
async fn identity_url() {
    let sf = spawn(EmulatorConfig::default()).await;
    let http = reqwest::Client::new();
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
    .await
    .body;
    let id_url = token["id"].as_str().unwrap();
    let bearer = token["access_token"].as_str().unwrap();
    let r = read(http.get(id_url).bearer_auth(bearer).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], id_url);
    assert_eq!(r.body["username"], "integration@handoff.local");
    assert_eq!(r.body["display_name"], "Handoff Integration");
    assert!(id_url.ends_with(r.body["user_id"].as_str().unwrap()));
    assert!(id_url.contains(r.body["organization_id"].as_str().unwrap()));
    assert_eq!(
        r.body["urls"]["rest"],
        format!("{}/services/data/v{{version}}/", sf.url())
    );

    let r = http.get(id_url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "Bad_OAuth_Token");
    let other = format!("{}005000000000000AAA", &id_url[..id_url.len() - 18]);
    let r = http.get(other).bearer_auth(bearer).send().await.unwrap();
    assert_eq!(r.status(), 404);
    sf.shutdown().await;
}

/// `SELECT … FROM Organization` is how clients learn the org's id, name and sandbox flag. The
/// object holds one read-only record, the org itself; the API cannot create or delete it.
#[tokio::test]
async fn organization_is_queryable_and_read_only() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    let r = c
        .query("SELECT Id, Name, IsSandbox, OrganizationType FROM Organization")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalSize"], 1);
    let org = &r.body["records"][0];
    assert_eq!(org["Id"], sf_emulator::ids::org_id18(&sf.config().org_id));
    assert_eq!(org["IsSandbox"], false);
    assert_eq!(org["attributes"]["type"], "Organization");
    let got = c
        .get(&format!(
            "{V}/sobjects/Organization/{}",
            org["Id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(got.status, 200, "{}", got.body);
    let create = c
        .call(
            "POST",
            &format!("{V}/sobjects/Organization"),
            Some(json!({})),
        )
        .await;
    assert_eq!(create.status, 400, "{}", create.body);
    assert_eq!(create.code(), "INVALID_TYPE_FOR_OPERATION");
    sf.shutdown().await;
}

/// `SELECT CreatedBy.Name FROM Case` failed with INVALID_FIELD: the system lookups to User had
/// no relationship. Every object now has CreatedBy and LastModifiedBy.
#[tokio::test]
async fn created_by_and_last_modified_by_relationships() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    c.create("Case", json!({"Subject": "who"})).await;
    let r = c
        .query("SELECT CreatedBy.Name, LastModifiedBy.Username FROM Case")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rec = &r.body["records"][0];
    assert_eq!(rec["CreatedBy"]["Name"], "Handoff Integration");
    assert_eq!(rec["CreatedBy"]["attributes"]["type"], "User");
    assert_eq!(
        rec["LastModifiedBy"]["Username"],
        "integration@handoff.local"
    );
    let d = c.get(&format!("{V}/sobjects/CaseComment/describe")).await;
    let created_by = d.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "CreatedById")
        .unwrap();
    assert_eq!(created_by["relationshipName"], "CreatedBy");
    assert_eq!(created_by["referenceTo"], json!(["User"]));
    sf.shutdown().await;
}

/// FIELDS(ALL|STANDARD|CUSTOM) was a syntax error. It now expands to the object's fields, with
/// Salesforce's rule that ALL and CUSTOM need a LIMIT of at most 200 (MALFORMED_QUERY otherwise).
#[tokio::test]
async fn soql_fields_function() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    c.create(
        "Case",
        json!({"Subject": "f", "Handoff_Session_Id__c": "s-1"}),
    )
    .await;
    let all = c.query("SELECT FIELDS(ALL) FROM Case LIMIT 200").await;
    assert_eq!(all.status, 200, "{}", all.body);
    let rec = &all.body["records"][0];
    assert_eq!(rec["Subject"], "f");
    assert_eq!(rec["Handoff_Session_Id__c"], "s-1");
    assert!(rec.get("CaseNumber").is_some());

    let standard = c.query("SELECT Id, FIELDS(STANDARD) FROM Case").await;
    assert_eq!(standard.status, 200, "{}", standard.body);
    let rec = standard.body["records"][0].as_object().unwrap();
    assert!(rec.contains_key("Subject") && rec.contains_key("Id"));
    assert!(!rec.keys().any(|k| k.ends_with("__c")));

    let custom = c.query("SELECT FIELDS(CUSTOM) FROM Case LIMIT 5").await;
    assert_eq!(custom.status, 200, "{}", custom.body);
    let keys: Vec<&String> = custom.body["records"][0]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "attributes")
        .collect();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.ends_with("__c")),
        "{keys:?}"
    );

    for q in [
        "SELECT FIELDS(ALL) FROM Case",
        "SELECT FIELDS(ALL) FROM Case LIMIT 201",
        "SELECT FIELDS(CUSTOM) FROM Case",
    ] {
        let r = c.query(q).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert_eq!(r.code(), "MALFORMED_QUERY", "{q}");
        assert!(
            r.message()
                .ends_with("The SOQL FIELDS function must have a LIMIT of at most 200"),
            "{q}: {}",
            r.message()
        );
    }
    c.create(
        "CaseComment",
        json!({"ParentId": standard.body["records"][0]["Id"], "CommentBody": "hi"}),
    )
    .await;
    let nested = c
        .query("SELECT Id, (SELECT FIELDS(STANDARD) FROM CaseComments) FROM Case")
        .await;
    assert_eq!(nested.status, 200, "{}", nested.body);
    assert_eq!(
        nested.body["records"][0]["CaseComments"]["records"][0]["CommentBody"],
        "hi"
    );
    let r = c.query("SELECT FIELDS(SOME) FROM Case LIMIT 1").await;
    assert_eq!(r.code(), "MALFORMED_QUERY");
    sf.shutdown().await;
}

fn iso(t: chrono::DateTime<Utc>) -> String {
    let s = t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    s.replace(':', "%3A").replace('+', "%2B")
}

/// The reply poller will want `sobjects/{type}/updated` and `/deleted`; neither existed. They
/// answer the documented shapes (`ids` + `latestDateCovered`; `deletedRecords` +
/// `earliestDateAvailable` + `latestDateCovered`), and INVALID_REPLICATION_DATE for a start not
/// before the end or older than the window, MISSING_ARGUMENT without start/end.
#[tokio::test]
async fn updated_and_deleted() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    let kept = c.create("Case", json!({"Subject": "kept"})).await;
    let gone = c.create("Case", json!({"Subject": "gone"})).await;
    let del = c
        .call("DELETE", &format!("{V}/sobjects/Case/{gone}"), None)
        .await;
    assert_eq!(del.status, 204);
    let now = Utc::now();
    let window = format!(
        "start={}&end={}",
        iso(now - Duration::hours(1)),
        iso(now + Duration::hours(1))
    );
    let updated = c.get(&format!("{V}/sobjects/Case/updated/?{window}")).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["ids"], json!([kept]));
    assert!(
        updated.body["latestDateCovered"]
            .as_str()
            .unwrap()
            .ends_with("+0000")
    );

    let deleted = c.get(&format!("{V}/sobjects/Case/deleted/?{window}")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let list = deleted.body["deletedRecords"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], gone.as_str());
    assert!(list[0]["deletedDate"].as_str().unwrap().ends_with("+0000"));
    assert!(deleted.body["earliestDateAvailable"].is_string());
    assert!(deleted.body["latestDateCovered"].is_string());

    let backwards = format!("start={}&end={}", iso(now), iso(now - Duration::hours(1)));
    let too_old = format!("start={}&end={}", iso(now - Duration::days(31)), iso(now));
    for (kind, query) in [
        ("updated", &backwards),
        ("updated", &too_old),
        ("deleted", &backwards),
    ] {
        let r = c.get(&format!("{V}/sobjects/Case/{kind}?{query}")).await;
        assert_eq!(r.status, 400, "{kind}?{query}: {}", r.body);
        assert_eq!(r.code(), "INVALID_REPLICATION_DATE");
    }
    let r = c.get(&format!("{V}/sobjects/Case/updated")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "MISSING_ARGUMENT");
    sf.shutdown().await;
}

/// `/limits` answered only DailyApiRequests; clients (and dashboards) read the standard entries.
#[tokio::test]
async fn limits_has_the_standard_entries() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    let r = c.get(&format!("{V}/limits")).await;
    assert_eq!(r.status, 200);
    for name in [
        "DailyApiRequests",
        "DailyAsyncApexExecutions",
        "DailyBulkApiBatches",
        "DailyBulkV2QueryJobs",
        "DataStorageMB",
        "FileStorageMB",
        "SingleEmail",
        "MassEmail",
        "HourlyPublishedPlatformEvents",
        "StreamingApiConcurrentClients",
    ] {
        let entry = &r.body[name];
        assert!(
            entry["Max"].is_u64() && entry["Remaining"].as_u64() <= entry["Max"].as_u64(),
            "{name}: {entry}"
        );
    }
    sf.shutdown().await;
}

fn field<'a>(describe: &'a Value, name: &str) -> &'a Value {
    describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

/// Describe lacked the attributes clients build forms and queries from. Each field now carries
/// `soapType`, `picklistValues`, `filterable`, `sortable`, `nillable`, `calculated`,
/// `autoNumber`, `caseSensitive`, with long text areas not filterable or sortable.
#[tokio::test]
async fn describe_field_attributes() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    let d = c.get(&format!("{V}/sobjects/Case/describe")).await.body;
    let status = field(&d, "Status");
    assert_eq!(status["type"], "picklist");
    assert_eq!(status["soapType"], "xsd:string");
    let values = status["picklistValues"].as_array().unwrap();
    assert!(
        values
            .iter()
            .any(|v| v["value"] == "New" && v["defaultValue"] == true)
    );
    assert!(
        values
            .iter()
            .any(|v| v["value"] == "Closed" && v["active"] == true)
    );
    let number = field(&d, "CaseNumber");
    assert_eq!(number["autoNumber"], true);
    assert_eq!(number["nillable"], false);
    let description = field(&d, "Description");
    assert_eq!(description["filterable"], false);
    assert_eq!(description["sortable"], false);
    let subject = field(&d, "Subject");
    for (k, v) in [
        ("filterable", json!(true)),
        ("sortable", json!(true)),
        ("nillable", json!(true)),
        ("calculated", json!(false)),
        ("caseSensitive", json!(false)),
        ("length", json!(255)),
    ] {
        assert_eq!(subject[k], v, "Subject.{k}");
    }
    assert_eq!(field(&d, "Id")["soapType"], "tns:ID");
    assert_eq!(field(&d, "CreatedDate")["soapType"], "xsd:dateTime");
    let ext = field(&d, "Handoff_Session_Id__c");
    assert_eq!(ext["externalId"], true);
    assert_eq!(ext["unique"], true);
    sf.shutdown().await;
}
