//! SOQL engine tests over a small in-memory `DataSource`.

use serde_json::{Value as Json, json};

use super::{execute, id_key, parse, to18};
use crate::schema::{CustomField, DataSource, FieldDef, FieldKind, Record, Schema};

/// Records per object, in insertion order.
struct Db {
    schema: Schema,
    rows: Vec<(String, Record)>,
}

impl DataSource for Db {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn records(&self, object: &str) -> Vec<&Record> {
        self.rows
            .iter()
            .filter(|(o, _)| o == object)
            .map(|(_, r)| r)
            .collect()
    }

    fn record(&self, object: &str, id18: &str) -> Option<&Record> {
        self.rows
            .iter()
            .find(|(o, r)| o == object && r["Id"].as_str() == Some(id18))
            .map(|(_, r)| r)
    }
}

fn custom(object: &str, name: &str, label: &str, external_id: bool) -> CustomField {
    CustomField {
        object: object.into(),
        field: FieldDef {
            name: name.into(),
            label: label.into(),
            kind: FieldKind::String,
            length: Some(255),
            length_in_bytes: false,
            required: false,
            createable: true,
            updateable: true,
            external_id,
            unique: external_id,
            default: None,
            reference_to: None,
            relationship_name: None,
        },
    }
}

// 15-char ids; records store the 18-char form.
const ACC1: &str = "001Hu00000AcCt1";
const CON1: &str = "003Hu00000CoNt1";
const CON2: &str = "003Hu00000CoNt2";
const CASE1: &str = "500Hu00000CaSe1";
const CASE2: &str = "500Hu00000CaSe2";
const CASE3: &str = "500Hu00000CaSe3";
const CASE4: &str = "500Hu00000CaSe4";

fn id(id15: &str) -> String {
    to18(id15).unwrap()
}

fn rec(v: Json) -> Record {
    v.as_object().unwrap().clone()
}

fn db() -> Db {
    let mut schema = Schema::standard();
    schema
        .add_custom_field(custom("Case", "Case_From__c", "Case From", false))
        .unwrap();
    schema
        .add_custom_field(custom(
            "Case",
            "Handoff_Session_Id__c",
            "Handoff Session Id",
            true,
        ))
        .unwrap();
    let mut rows = vec![
        (
            "Account".to_string(),
            rec(json!({"Id": id(ACC1), "Name": "Acme"})),
        ),
        (
            "Contact".to_string(),
            rec(
                json!({"Id": id(CON1), "LastName": "Ng", "Email": "ann@example.com", "AccountId": id(ACC1)}),
            ),
        ),
        (
            "Contact".to_string(),
            rec(json!({"Id": id(CON2), "LastName": "Bo", "Email": null, "AccountId": null})),
        ),
    ];
    let cases = [
        json!({"Id": id(CASE1), "CaseNumber": "00001001", "Subject": "Printer on fire",
               "Status": "New", "Case_From__c": "chat", "Handoff_Session_Id__c": "abc",
               "ContactId": id(CON1), "ParentId": null, "IsClosed": false,
               "Description": "long text",
               "CreatedDate": "2026-11-22T07:00:00.000+0000"}),
        json!({"Id": id(CASE2), "CaseNumber": "00001002", "Subject": "It's \"broken\" \\ again",
               "Status": "Closed", "Case_From__c": null, "Handoff_Session_Id__c": "def",
               "ContactId": id(CON2), "ParentId": id(CASE1), "IsClosed": true,
               "CreatedDate": "2026-11-21T23:30:00.000+0000"}),
        json!({"Id": id(CASE3), "CaseNumber": "00001003", "Subject": "100% done_ok",
               "Status": "new", "Case_From__c": "email", "Handoff_Session_Id__c": null,
               "ContactId": null, "ParentId": id(CASE2), "IsClosed": false,
               "CreatedDate": "2026-11-22T09:15:30.500+0000"}),
        json!({"Id": id(CASE4), "CaseNumber": "00001004", "Subject": null,
               "Status": "Working", "Case_From__c": "Chat", "Handoff_Session_Id__c": "ghi",
               "ContactId": id(CON1), "ParentId": null, "IsClosed": false,
               "CreatedDate": "2026-11-20T12:00:00.000+0000"}),
    ];
    rows.extend(cases.into_iter().map(|c| ("Case".to_string(), rec(c))));
    let comments = [
        (
            "00aHu00000CmNt1",
            CASE1,
            "second",
            true,
            "2026-11-22T08:00:00.000+0000",
        ),
        (
            "00aHu00000CmNt2",
            CASE1,
            "first",
            false,
            "2026-11-22T07:30:00.000+0000",
        ),
        (
            "00aHu00000CmNt3",
            CASE1,
            "third",
            true,
            "2026-11-22T09:00:00.000+0000",
        ),
        (
            "00aHu00000CmNt4",
            CASE2,
            "other",
            true,
            "2026-11-22T10:00:00.000+0000",
        ),
        (
            "00aHu00000CmNt5",
            CASE4,
            "fourth",
            false,
            "2026-11-22T11:00:00.000+0000",
        ),
    ];
    rows.extend(
        comments
            .into_iter()
            .map(|(cid, parent, body, published, created)| {
                (
                    "CaseComment".to_string(),
                    rec(
                        json!({"Id": id(cid), "ParentId": id(parent), "CommentBody": body,
                       "IsPublished": published, "CreatedDate": created}),
                    ),
                )
            }),
    );
    Db { schema, rows }
}

fn run(db: &Db, q: &str) -> super::QueryOutput {
    let query = parse(q).unwrap_or_else(|e| panic!("parse {q}: {}", e.message()));
    execute(&query, db, "v66.0").unwrap_or_else(|e| panic!("execute {q}: {}", e.message()))
}

/// The `CaseNumber`s a Case query returns, in order.
fn numbers(q: &str) -> Vec<String> {
    let db = db();
    run(&db, q)
        .records
        .iter()
        .map(|r| {
            r["CaseNumber"]
                .as_str()
                .unwrap()
                .trim_start_matches("0000")
                .to_string()
        })
        .collect()
}

fn err(q: &str) -> super::SoqlError {
    let db = db();
    match parse(q) {
        Err(e) => e,
        Ok(query) => execute(&query, &db, "v66.0").expect_err(q),
    }
}

#[test]
fn checksum_matches_reference_vectors() {
    for (short, long) in [
        ("001D000000IqhSL", "001D000000IqhSLIAZ"),
        ("001D000000IRFma", "001D000000IRFmaIAH"),
        ("0011U00000V0tkD", "0011U00000V0tkDQAR"),
        ("003D000000QV9n2", "003D000000QV9n2IAD"),
        ("00558000001N0Ke", "00558000001N0KeAAK"),
        ("500Hu000020yLuH", "500Hu000020yLuHIAU"),
    ] {
        assert_eq!(to18(short).as_deref(), Some(long));
        assert_eq!(to18(long).as_deref(), Some(long));
    }
    assert_eq!(to18("500Hu000020yLu"), None);
    assert_eq!(to18("500Hu000020yLu!"), None);
    assert_eq!(id_key("500Hu000020yLuH"), id_key("500HU000020YLUHIAU"));
    assert_ne!(id_key("500Hu000020yLuH"), id_key("500hu000020yluh"));
}

#[test]
fn gateway_session_query_renders_case_with_ordered_comments() {
    let db = db();
    let out = run(
        &db,
        "SELECT Id, CaseNumber, Case_From__c, Handoff_Session_Id__c, (SELECT Id, CommentBody, IsPublished, CreatedDate FROM CaseComments ORDER BY CreatedDate) FROM Case WHERE Handoff_Session_Id__c = 'abc' LIMIT 1",
    );
    assert_eq!(out.total_size, 1);
    let c1 = id(CASE1);
    let cm = |s| id(s);
    assert_eq!(
        out.records[0],
        json!({
            "attributes": {"type": "Case", "url": format!("/services/data/v66.0/sobjects/Case/{c1}")},
            "Id": c1, "CaseNumber": "00001001", "Case_From__c": "chat", "Handoff_Session_Id__c": "abc",
            "CaseComments": {"totalSize": 3, "done": true, "records": [
                {"attributes": {"type": "CaseComment", "url": format!("/services/data/v66.0/sobjects/CaseComment/{}", cm("00aHu00000CmNt2"))},
                 "Id": cm("00aHu00000CmNt2"), "CommentBody": "first", "IsPublished": false, "CreatedDate": "2026-11-22T07:30:00.000+0000"},
                {"attributes": {"type": "CaseComment", "url": format!("/services/data/v66.0/sobjects/CaseComment/{}", cm("00aHu00000CmNt1"))},
                 "Id": cm("00aHu00000CmNt1"), "CommentBody": "second", "IsPublished": true, "CreatedDate": "2026-11-22T08:00:00.000+0000"},
                {"attributes": {"type": "CaseComment", "url": format!("/services/data/v66.0/sobjects/CaseComment/{}", cm("00aHu00000CmNt3"))},
                 "Id": cm("00aHu00000CmNt3"), "CommentBody": "third", "IsPublished": true, "CreatedDate": "2026-11-22T09:00:00.000+0000"},
            ]}
        })
    );
}

#[test]
fn gateway_count_query_through_parent_in() {
    let db = db();
    let out = run(
        &db,
        "SELECT COUNT() FROM CaseComment WHERE Parent.Handoff_Session_Id__c IN ('a','b')",
    );
    assert_eq!((out.total_size, out.records.len()), (0, 0));
    let out = run(
        &db,
        "SELECT COUNT() FROM CaseComment WHERE Parent.Handoff_Session_Id__c IN ('ABC','def')",
    );
    assert_eq!((out.total_size, out.records.len()), (4, 0));
    let out = run(&db, "select count() from casecomment limit 2");
    assert_eq!(out.total_size, 2);
}

#[test]
fn count_field_returns_one_aggregate_row() {
    let db = db();
    let out = run(&db, "SELECT COUNT(Id) FROM Case WHERE IsClosed = false");
    assert_eq!(out.total_size, 1);
    assert_eq!(
        out.records,
        vec![json!({"attributes": {"type": "AggregateResult"}, "expr0": 3})]
    );
    let out = run(&db, "SELECT COUNT(Subject), COUNT(ContactId) n FROM Case");
    assert_eq!(
        out.records,
        vec![json!({"attributes": {"type": "AggregateResult"}, "expr0": 3, "n": 3})]
    );
    let e = err("SELECT COUNT(Id), Subject FROM Case");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert!(
        e.message()
            .ends_with("Field must be grouped or aggregated: Subject")
    );
}

#[test]
fn comparison_operators_on_strings_are_case_insensitive() {
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Status = 'NEW'"),
        ["1001", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Status != 'new'"),
        ["1002", "1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Status <> 'new'"),
        ["1002", "1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CaseNumber < '00001002'"),
        ["1001"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CaseNumber <= '00001002'"),
        ["1001", "1002"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CaseNumber > '00001003'"),
        ["1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CaseNumber >= '00001003'"),
        ["1003", "1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Status IN ('working', 'CLOSED')"),
        ["1002", "1004"]
    );
    // NOT IN keeps rows whose value is null (as != does).
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Case_From__c NOT IN ('chat')"),
        ["1002", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Case_From__c IN ('email', null)"),
        ["1002", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE IsClosed = true"),
        ["1002"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE IsClosed != TRUE"),
        ["1001", "1003", "1004"]
    );
}

#[test]
fn null_comparisons() {
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject = null"),
        ["1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject != null"),
        ["1001", "1002", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE ContactId = NULL"),
        ["1003"]
    );
    // A null value fails every comparison except `!=`.
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject != 'x'"),
        ["1001", "1002", "1003", "1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject < 'zzz'"),
        ["1001", "1002", "1003"]
    );
}

#[test]
fn boolean_precedence_not_and_or() {
    // AND binds tighter than OR.
    assert_eq!(
        numbers(
            "SELECT CaseNumber FROM Case WHERE Status = 'Closed' OR Status = 'new' AND Case_From__c = 'email'"
        ),
        ["1002", "1003"]
    );
    assert_eq!(
        numbers(
            "SELECT CaseNumber FROM Case WHERE (Status = 'Closed' OR Status = 'new') AND Case_From__c = 'email'"
        ),
        ["1003"]
    );
    // NOT binds tighter than AND.
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE NOT Status = 'new' AND IsClosed = false"),
        ["1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE NOT (Status = 'new' AND IsClosed = false)"),
        ["1002", "1004"]
    );
    assert_eq!(
        numbers(
            "select CaseNumber from Case where not Status like 'n%' or CaseNumber = '00001001'"
        ),
        ["1001", "1002", "1004"]
    );
}

#[test]
fn string_escapes_decode() {
    assert_eq!(
        numbers(r#"SELECT CaseNumber FROM Case WHERE Subject = 'It\'s \"broken\" \\ again'"#),
        ["1002"]
    );
    assert_eq!(
        numbers(r"SELECT CaseNumber FROM Case WHERE Subject = 'Printer\u0020on fire'"),
        ["1001"]
    );
    let q = parse(r"SELECT Id FROM Case WHERE Subject IN ('\n\N\r\R\t\T\b\B\f\F')").unwrap();
    let super::ast::Cond::In { values, .. } = q.select.filter.unwrap() else {
        panic!("IN expected")
    };
    let super::ast::Value::Str(s) = &values[0].value else {
        panic!("string expected")
    };
    assert_eq!(s.plain().unwrap(), "\n\n\r\r\t\t\u{8}\u{8}\u{c}\u{c}");

    let e = err(r"SELECT Id FROM Case WHERE Subject = 'bad\qescape'");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert_eq!(
        e.message(),
        "\nSELECT Id FROM Case WHERE Subject = 'bad\\qescape'\n                                    ^\nERROR at Row:1:Column:37\nInvalid string literal 'bad\\qescape'. Illegal character sequence '\\q' in string literal."
    );
    assert_eq!(
        err(r"SELECT Id FROM Case WHERE Subject = 'x\u12'").error_code(),
        "MALFORMED_QUERY"
    );
    let e = err("SELECT Id FROM Case WHERE Subject = 'open");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert!(
        e.message()
            .ends_with("mismatched character '<EOF>' expecting '''")
    );
    // Wildcard escapes belong to LIKE only.
    assert_eq!(
        err(r"SELECT Id FROM Case WHERE Subject = '100\%'").error_code(),
        "MALFORMED_QUERY"
    );
}

#[test]
fn like_wildcards_escapes_and_case() {
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject LIKE 'printer%'"),
        ["1001"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject LIKE '%ON FIRE'"),
        ["1001"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject LIKE 'Pri_ter%'"),
        ["1001"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject LIKE 'Pri_er%'"),
        Vec::<String>::new()
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject LIKE '%'"),
        ["1001", "1002", "1003"]
    );
    // `\%` and `\_` match the literal characters only.
    assert_eq!(
        numbers(r"SELECT CaseNumber FROM Case WHERE Subject LIKE '%\%%'"),
        ["1003"]
    );
    assert_eq!(
        numbers(r"SELECT CaseNumber FROM Case WHERE Subject LIKE '%done\_ok'"),
        ["1003"]
    );
    assert_eq!(
        numbers(r"SELECT CaseNumber FROM Case WHERE Subject LIKE '100\% done\_o'"),
        Vec::<String>::new()
    );
    assert_eq!(
        numbers(r"SELECT CaseNumber FROM Case WHERE Subject LIKE '%\\%'"),
        ["1002"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Subject LIKE '%a%a%'"),
        ["1002"]
    );
}

#[test]
fn parent_fields_render_nested_and_null() {
    let db = db();
    let out = run(
        &db,
        "SELECT Contact.Email, Contact.Account.Name, Parent.Case_From__c, Parent.Contact.Email FROM Case ORDER BY CaseNumber",
    );
    let con1 = id(CON1);
    let acc1 = id(ACC1);
    let case1 = id(CASE1);
    let case2 = id(CASE2);
    let con2 = id(CON2);
    let attrs = |t: &str, i: &str| json!({"type": t, "url": format!("/services/data/v66.0/sobjects/{t}/{i}")});
    assert_eq!(
        out.records[0]["Contact"],
        json!({"attributes": attrs("Contact", &con1), "Email": "ann@example.com", "Account": {"attributes": attrs("Account", &acc1), "Name": "Acme"}})
    );
    assert_eq!(out.records[0]["Parent"], Json::Null);
    // Contact present, its Account lookup empty.
    assert_eq!(
        out.records[1]["Contact"],
        json!({"attributes": attrs("Contact", &con2), "Email": null, "Account": null})
    );
    assert_eq!(
        out.records[1]["Parent"],
        json!({"attributes": attrs("Case", &case1), "Case_From__c": "chat",
               "Contact": {"attributes": attrs("Contact", &con1), "Email": "ann@example.com"}})
    );
    assert_eq!(out.records[2]["Contact"], Json::Null);
    assert_eq!(
        out.records[2]["Parent"],
        json!({"attributes": attrs("Case", &case2), "Case_From__c": null,
               "Contact": {"attributes": attrs("Contact", &con2), "Email": null}})
    );
    // Names are case-insensitive and rendered canonically.
    let out = run(
        &db,
        "select contact.EMAIL, case_from__C from case where casenumber = '00001001'",
    );
    assert_eq!(out.records[0]["Contact"]["Email"], "ann@example.com");
    assert_eq!(out.records[0]["Case_From__c"], "chat");
}

#[test]
fn parent_fields_in_where_and_order_by() {
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Contact.Email = 'ANN@example.com'"),
        ["1001", "1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Contact.Email = null"),
        ["1002", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Parent.Parent.Subject LIKE 'printer%'"),
        ["1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE Parent.Contact.Email != null"),
        ["1002"]
    );
    assert_eq!(
        numbers(
            "SELECT CaseNumber FROM Case ORDER BY Contact.LastName DESC NULLS LAST, CaseNumber DESC"
        ),
        ["1004", "1001", "1002", "1003"]
    );
}

#[test]
fn child_subquery_where_order_limit_and_null_when_empty() {
    let db = db();
    let out = run(
        &db,
        "SELECT CaseNumber, (SELECT CommentBody FROM CaseComments WHERE IsPublished = true ORDER BY CreatedDate DESC LIMIT 2) FROM Case ORDER BY CaseNumber",
    );
    let bodies = |r: &Json| -> Vec<String> {
        r["CaseComments"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["CommentBody"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(bodies(&out.records[0]), ["third", "second"]);
    assert_eq!(out.records[0]["CaseComments"]["totalSize"], 2);
    assert_eq!(out.records[0]["CaseComments"]["done"], true);
    assert_eq!(bodies(&out.records[1]), ["other"]);
    assert_eq!(out.records[2]["CaseComments"], Json::Null);
    // Only unpublished comment on case 4: filtered away → null.
    assert_eq!(out.records[3]["CaseComments"], Json::Null);
    // Child relationship names resolve case-insensitively and render canonically.
    let out = run(
        &db,
        "SELECT Id, (SELECT Subject FROM cases) FROM Contact WHERE LastName = 'Ng'",
    );
    let subjects: Vec<&Json> = out.records[0]["Cases"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["Subject"])
        .collect();
    assert_eq!(subjects, [&json!("Printer on fire"), &Json::Null]);
}

#[test]
fn order_by_nulls_and_direction() {
    // Default: ASC NULLS FIRST.
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case ORDER BY Subject"),
        ["1004", "1003", "1002", "1001"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case ORDER BY Subject ASC NULLS LAST"),
        ["1003", "1002", "1001", "1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case ORDER BY Subject DESC"),
        ["1004", "1001", "1002", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case ORDER BY Subject DESC NULLS LAST"),
        ["1001", "1002", "1003", "1004"]
    );
    // Case-insensitive sort, stable ties (insertion order).
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case ORDER BY Case_From__c"),
        ["1002", "1001", "1004", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case ORDER BY IsClosed DESC, CreatedDate"),
        ["1002", "1004", "1001", "1003"]
    );
    // No ORDER BY: insertion order.
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case"),
        ["1001", "1002", "1003", "1004"]
    );
}

#[test]
fn limit_and_offset() {
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case ORDER BY CaseNumber DESC LIMIT 2"),
        ["1004", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case ORDER BY CaseNumber LIMIT 2 OFFSET 1"),
        ["1002", "1003"]
    );
    assert_eq!(numbers("SELECT CaseNumber FROM Case OFFSET 3"), ["1004"]);
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case LIMIT 0"),
        Vec::<String>::new()
    );
    let db = db();
    assert_eq!(run(&db, "SELECT Id FROM Case LIMIT 3").total_size, 3);
}

#[test]
fn ids_compare_in_15_or_18_char_form() {
    let long = id(CASE2);
    assert_eq!(
        numbers(&format!("SELECT CaseNumber FROM Case WHERE Id = '{CASE2}'")),
        ["1002"]
    );
    assert_eq!(
        numbers(&format!("SELECT CaseNumber FROM Case WHERE Id = '{long}'")),
        ["1002"]
    );
    assert_eq!(
        numbers(&format!(
            "SELECT CaseNumber FROM Case WHERE Id = '{}'",
            long.to_ascii_lowercase()
        )),
        ["1002"]
    );
    // The 15-char form is case-sensitive: a lower-cased 15-char id is another record.
    assert_eq!(
        numbers(&format!(
            "SELECT CaseNumber FROM Case WHERE Id = '{}'",
            CASE2.to_ascii_lowercase()
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        numbers(&format!(
            "SELECT CaseNumber FROM Case WHERE ContactId IN ('{CON1}', '{}') ORDER BY CaseNumber DESC",
            id(CON2)
        )),
        ["1004", "1002", "1001"]
    );
    assert_eq!(
        numbers(&format!(
            "SELECT CaseNumber FROM Case WHERE ParentId != '{CASE1}'"
        )),
        ["1001", "1003", "1004"]
    );
    let e = err("SELECT Id FROM Case WHERE Id = 'abc'");
    assert_eq!(e.error_code(), "INVALID_QUERY_FILTER_OPERATOR");
    assert!(e.message().ends_with("\ninvalid ID field: abc"));
}

#[test]
fn datetime_comparisons_as_instants() {
    // 2026-11-22T07:00:00Z is 2026-11-22T09:00:00+02:00 and 2026-11-21T23:00:00-08:00.
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate = 2026-11-22T09:00:00+02:00"),
        ["1001"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate = 2026-11-21T23:00:00.000-08:00"),
        ["1001"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate = 2026-11-22T07:00:00Z"),
        ["1001"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate > 2026-11-22T07:00:00Z"),
        ["1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate >= 2026-11-22T07:00:00Z"),
        ["1001", "1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate < 2026-11-22T01:30:00+02:00"),
        ["1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate <= 2026-11-21T23:30:00Z"),
        ["1002", "1004"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate > 2026-11-22T09:15:30.4Z"),
        ["1003"]
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate > 2026-11-22T09:15:30.5Z"),
        Vec::<String>::new()
    );
    assert_eq!(
        numbers("SELECT CaseNumber FROM Case WHERE CreatedDate != 2026-11-22T07:00:00+0000"),
        ["1002", "1003", "1004"]
    );
}

#[test]
fn relative_date_literals() {
    let db = db();
    let today = chrono::Utc::now().date_naive();
    let at = |d: chrono::NaiveDate| format!("{}T12:00:00.000+0000", d.format("%Y-%m-%d"));
    let days = |n: i64| today + chrono::Duration::days(n);
    let mut db2 = Db {
        schema: db.schema.clone(),
        rows: vec![],
    };
    for (i, d) in [0, -1, 1, -5, -40].iter().enumerate() {
        db2.rows.push((
            "Case".into(),
            rec(json!({"Id": id(&format!("500Hu00000Date{i}")), "CaseNumber": format!("{i}"), "CreatedDate": at(days(*d))})),
        ));
    }
    let got = |q: &str| -> Vec<String> {
        run(&db2, q)
            .records
            .iter()
            .map(|r| r["CaseNumber"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE CreatedDate = TODAY"),
        ["0"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE CreatedDate = YESTERDAY"),
        ["1"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE CreatedDate = TOMORROW"),
        ["2"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE CreatedDate < TODAY"),
        ["1", "3", "4"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE CreatedDate > TODAY"),
        ["2"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE CreatedDate = LAST_N_DAYS:7"),
        ["0", "1", "3"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE CreatedDate = NEXT_N_DAYS:3"),
        ["2"]
    );
}

#[test]
fn invalid_field_message_format() {
    let e = err("SELECT Foo FROM Case");
    assert_eq!(e.error_code(), "INVALID_FIELD");
    assert_eq!(
        e.message(),
        "\nSELECT Foo FROM Case\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on entity 'Case'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    );
    // Row and column on a multi-line statement, unknown field on a parent.
    let e = err("SELECT Id,\n  Contact.Nope\nFROM Case");
    assert_eq!(e.error_code(), "INVALID_FIELD");
    assert!(
        e.message().starts_with("\n  Contact.Nope\n          ^\nERROR at Row:2:Column:11\nNo such column 'Nope' on entity 'Contact'."),
        "{}",
        e.message()
    );
    let e = err("SELECT Id FROM Case WHERE Bogus.Email = 'x'");
    assert_eq!(e.error_code(), "INVALID_FIELD");
    assert!(e.message().contains(
        "ERROR at Row:1:Column:27\nDidn't understand relationship 'Bogus' in field path."
    ));
    let e = err("SELECT Id FROM Case ORDER BY Nope");
    assert_eq!(e.error_code(), "INVALID_FIELD");
    // Errors surface even in a child sub-query.
    let e = err("SELECT Id, (SELECT Nope FROM CaseComments) FROM Case");
    assert!(e.message().ends_with("No such column 'Nope' on entity 'CaseComment'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."));
}

#[test]
fn invalid_type_message_format() {
    let e = err("SELECT Id FROM Nope");
    assert_eq!(e.error_code(), "INVALID_TYPE");
    assert_eq!(e.reason(), "sObject type 'Nope' is not supported.");
    assert_eq!(
        e.message(),
        "\nSELECT Id FROM Nope\n               ^\nERROR at Row:1:Column:16\nsObject type 'Nope' is not supported."
    );
    let e = err("SELECT Id, (SELECT Id FROM Comments) FROM Case");
    assert_eq!(e.error_code(), "INVALID_TYPE");
    assert!(
        e.reason()
            .starts_with("Didn't understand relationship 'Comments' in FROM part of query call.")
    );
}

#[test]
fn malformed_queries_point_at_the_unexpected_token() {
    let e = err("SELECT * FROM Case");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert_eq!(
        e.message(),
        "\nSELECT * FROM Case\n       ^\nERROR at Row:1:Column:8\nunexpected token: '*'"
    );
    for (q, token) in [
        ("SELECT Id FROM Case WHERE", "<EOF>"),
        ("SELECT Id FROM Case GROUP BY Status", "GROUP"),
        (
            "SELECT Id FROM Case WHERE Id IN (SELECT ParentId FROM CaseComment)",
            "SELECT",
        ),
        ("SELECT Id FROM Case WHERE Subject == 'x'", "="),
        ("SELECT Id, FROM Case", "FROM"),
        ("SELECT Id FROM Case LIMIT 'x'", "'x'"),
        ("SELECT Id FROM Case LIMIT 5 OFFSET", "<EOF>"),
        ("SELECT Id FROM Case ORDER BY Subject NULLS", "<EOF>"),
        ("SELECT Id FROM Case WHERE (Subject = 'x'", "<EOF>"),
        ("SELECT Id FROM Case WHERE Subject = 'x' AND", "<EOF>"),
        ("SELECT Id FROM Case WHERE Subject = 'O'Brien'", "Brien"),
        ("SELECT COUNT(), Id FROM Case", ","),
        ("SELECT Id, COUNT() FROM Case", "COUNT"),
        (
            "SELECT Id, (SELECT Id, (SELECT Id FROM Cases) FROM Cases) FROM Case",
            "(",
        ),
        (
            "SELECT Id FROM Case WHERE CreatedDate > 2026-13-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
        ),
        ("SELECT Id FROM Case; DELETE", ";"),
        ("", ""),
    ] {
        let e = err(q);
        assert_eq!(e.error_code(), "MALFORMED_QUERY", "{q}");
        if q.is_empty() {
            assert_eq!(e.message(), "SOQL statements cannot be empty or null");
        } else {
            assert!(
                e.message()
                    .ends_with(&format!("\nunexpected token: '{token}'")),
                "{q}: {}",
                e.message()
            );
        }
    }
    let e = err("SELECT Id, Subject, id FROM Case");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert_eq!(
        e.message(),
        "\nSELECT Id, Subject, id FROM Case\n                    ^\nERROR at Row:1:Column:21\nduplicate field selected: id"
    );
    let e = err("SELECT Contact.Email, contact.email FROM Case");
    assert!(
        e.message()
            .ends_with("duplicate field selected: contact.email")
    );
}

#[test]
fn literal_type_mismatches_are_invalid_field() {
    for (q, reason) in [
        (
            "SELECT Id FROM CaseComment WHERE IsPublished = 'true'",
            "value of filter criterion for field 'IsPublished' must be of type boolean and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Case WHERE Subject = 5",
            "value of filter criterion for field 'Subject' must be of type string and should be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Case WHERE CreatedDate > '2026-01-01T00:00:00Z'",
            "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Case WHERE CreatedDate > 2026-01-01",
            "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Case WHERE Status IN ('New', true)",
            "value of filter criterion for field 'Status' must be of type string and should be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Case WHERE Description = 'x'",
            "field 'Description' can not be filtered in a query call",
        ),
        (
            "SELECT Id FROM Case ORDER BY Description",
            "field 'Description' can not be sorted in a query call",
        ),
        (
            "SELECT Id FROM Case WHERE IsClosed LIKE 'x'",
            "invalid operator on boolean field: LIKE",
        ),
    ] {
        let e = err(q);
        assert_eq!(e.error_code(), "INVALID_FIELD", "{q}");
        assert_eq!(e.reason(), reason, "{q}");
    }
}

#[test]
fn object_prefix_and_selecting_long_text() {
    let db = db();
    let out = run(
        &db,
        "SELECT Case.Subject, Description FROM Case WHERE Case.CaseNumber = '00001001'",
    );
    assert_eq!(out.records[0]["Subject"], "Printer on fire");
    assert_eq!(out.records[0]["Description"], "long text");
    // A field missing from the stored record renders as null.
    assert_eq!(out.records[0].as_object().unwrap().len(), 3);
    let out = run(&db, "SELECT Reason FROM Case LIMIT 1");
    assert_eq!(out.records[0]["Reason"], Json::Null);
}

#[test]
fn number_and_date_fields() {
    let base = db();
    let mut schema = base.schema.clone();
    for (name, kind) in [
        ("Score__c", FieldKind::Double),
        ("Due_Date__c", FieldKind::Date),
    ] {
        let mut field = custom("Case", name, name, false);
        field.field.kind = kind;
        field.field.length = None;
        schema.add_custom_field(field).unwrap();
    }
    let rows = [
        (CASE1, json!(2.5), json!("2026-11-22")),
        (CASE2, json!(-1), json!(null)),
        (CASE3, json!(10), json!("2026-12-01")),
        (CASE4, json!(null), json!("2026-11-21")),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (c, score, due))| {
        (
            "Case".to_string(),
            rec(json!({"Id": id(c), "CaseNumber": format!("{}", i + 1), "Score__c": score, "Due_Date__c": due})),
        )
    })
    .collect();
    let db = Db { schema, rows };
    let got = |q: &str| -> Vec<String> {
        run(&db, q)
            .records
            .iter()
            .map(|r| r["CaseNumber"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE Score__c > 2"),
        ["1", "3"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE Score__c = 2.50"),
        ["1"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE Score__c <= -1"),
        ["2"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE Score__c IN (10, -1.0)"),
        ["2", "3"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case ORDER BY Score__c DESC NULLS LAST"),
        ["3", "1", "2", "4"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE Due_Date__c = 2026-11-22"),
        ["1"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE Due_Date__c > 2026-11-21"),
        ["1", "3"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case WHERE Due_Date__c < 2026-11-22 OR Due_Date__c = null"),
        ["2", "4"]
    );
    assert_eq!(
        got("SELECT CaseNumber FROM Case ORDER BY Due_Date__c"),
        ["2", "4", "1", "3"]
    );
    let e = match parse("SELECT Id FROM Case WHERE Score__c = '5'") {
        Ok(q) => execute(&q, &db, "v66.0").unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(
        e.reason(),
        "value of filter criterion for field 'Score__c' must be of type double and should not be enclosed in quotes"
    );
    let e = execute(
        &parse("SELECT Id FROM Case WHERE Due_Date__c = 2026-11-22T00:00:00Z").unwrap(),
        &db,
        "v66.0",
    )
    .unwrap_err();
    assert_eq!(e.error_code(), "INVALID_FIELD");
    assert!(e.reason().contains("must be of type date and"));
}

#[test]
fn aggregates_are_top_level_only() {
    let e = err("SELECT Id, (SELECT COUNT() FROM CaseComments) FROM Case");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert!(e.message().ends_with("unexpected token: 'COUNT'"));
    let e = err("SELECT COUNT(Id), (SELECT Id FROM CaseComments) FROM Case");
    assert!(
        e.message()
            .ends_with("Field must be grouped or aggregated: CaseComments")
    );
}

#[test]
fn bad_escape_without_closing_quote_quotes_the_rest() {
    let e = err(r"SELECT Id FROM Case WHERE Subject = 'ab\x");
    assert_eq!(
        e.reason(),
        r"Invalid string literal 'ab\x'. Illegal character sequence '\x' in string literal."
    );
}
