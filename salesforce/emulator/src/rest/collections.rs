//! sObject Collections: `composite/sobjects` create (POST), update (PATCH), delete (DELETE),
//! retrieve (`GET|POST composite/sobjects/{Type}`) and upsert
//! (`PATCH composite/sobjects/{Type}/{ExtField}`). Per-record results use the SaveResult shape
//! (`statusCode`); with `allOrNone` the whole batch runs under a savepoint that is rolled back
//! unless every record succeeded.

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::sobjects::{record_json, requested_fields};
use super::{Call, Reply, method_not_allowed};
use crate::dml::{self, Ctx, Upserted};
use crate::error::SfError;
use crate::ids;
use crate::schema::ObjectDef;
use crate::store::Store;

pub(crate) const MAX_RECORDS: usize = 200;

/// One record's outcome.
struct Outcome {
    /// Id to report (created/updated record, or the input id of an update).
    id: Option<String>,
    result: Result<Option<bool>, SfError>,
}

fn outcome_json(o: &Outcome) -> Value {
    match &o.result {
        Ok(created) => {
            let mut v = json!({"id": o.id, "success": true, "errors": []});
            if let Some(c) = created {
                v["created"] = Value::Bool(*c);
            }
            v
        }
        Err(e) => json!({"success": false, "errors": [e.save_item()]}),
    }
}

fn rolled_back_json(rolled_back_id: Option<&String>) -> Value {
    let mut v = json!({
        "success": false,
        "errors": [{
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
            "fields": [],
        }],
    });
    if let Some(id) = rolled_back_id {
        v["id"] = Value::String(id.clone());
    }
    v
}

struct Envelope {
    all_or_none: bool,
    records: Vec<Value>,
}

fn envelope(call: &Call) -> Result<Envelope, SfError> {
    let body = call.object_body()?;
    let all_or_none = match body.get("allOrNone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(SfError::json_parser(format!(
                "Cannot deserialize instance of boolean from value {other}"
            )));
        }
    };
    let records = match body.get("records") {
        Some(Value::Array(list)) => list.clone(),
        _ => {
            return Err(SfError::json_parser(
                "Missing required 'records' parameter or it is not an array",
            ));
        }
    };
    if records.len() > MAX_RECORDS {
        return Err(SfError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    Ok(Envelope {
        all_or_none,
        records,
    })
}

/// Runs `op` for each record (on a copy when all-or-none) and renders the results.
fn run_batch(
    store: &mut Store,
    all_or_none: bool,
    records: &[Value],
    mut op: impl FnMut(&mut Store, &Value) -> Outcome,
    report_id_on_rollback: bool,
) -> Reply {
    if !all_or_none {
        let results: Vec<Value> = records
            .iter()
            .map(|r| outcome_json(&op(store, r)))
            .collect();
        return Reply::ok(Value::Array(results));
    }
    let sp = store.savepoint();
    let outcomes: Vec<Outcome> = records.iter().map(|r| op(store, r)).collect();
    if outcomes.iter().all(|o| o.result.is_ok()) {
        store.release(sp);
        return Reply::ok(Value::Array(outcomes.iter().map(outcome_json).collect()));
    }
    store.rollback(sp);
    let results = outcomes
        .iter()
        .map(|o| match &o.result {
            Err(_) => outcome_json(o),
            Ok(created) => {
                let keep_id = report_id_on_rollback && *created != Some(true);
                rolled_back_json(o.id.as_ref().filter(|_| keep_id))
            }
        })
        .collect();
    Reply::ok(Value::Array(results))
}

fn record_type<'a>(
    store: &'a Store,
    record: &Map<String, Value>,
) -> Result<Option<&'a ObjectDef>, SfError> {
    let Some(t) = record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    store.schema.object(t).map(Some).ok_or_else(|| {
        SfError::dml(
            "INVALID_TYPE",
            format!("sObject type '{t}' is not supported."),
            Vec::new(),
        )
    })
}

fn fail(e: SfError) -> Outcome {
    Outcome {
        id: None,
        result: Err(e),
    }
}

fn create_one(store: &mut Store, ctx: &Ctx, raw: &Value) -> Outcome {
    let Some(record) = raw.as_object() else {
        return fail(SfError::json_parser("Each record must be a JSON object"));
    };
    let obj = match record_type(store, record) {
        Ok(Some(o)) => o.name.clone(),
        Ok(None) => {
            return fail(SfError::dml(
                "INVALID_TYPE",
                "Each record must specify its type in attributes.type",
                Vec::new(),
            ));
        }
        Err(e) => return fail(e),
    };
    match dml::create(store, ctx, &obj, record) {
        Ok(id) => Outcome {
            id: Some(id),
            result: Ok(None),
        },
        Err(e) => fail(e),
    }
}

fn update_one(store: &mut Store, ctx: &Ctx, raw: &Value) -> Outcome {
    let Some(record) = raw.as_object() else {
        return fail(SfError::json_parser("Each record must be a JSON object"));
    };
    let mut body = record.clone();
    let id_key = body.keys().find(|k| k.eq_ignore_ascii_case("id")).cloned();
    let Some(given) = id_key
        .and_then(|k| body.remove(&k))
        .and_then(|v| v.as_str().map(str::to_string))
    else {
        return fail(SfError::dml(
            "MISSING_ARGUMENT",
            "Id not specified in an update call",
            Vec::new(),
        ));
    };
    let declared = match record_type(store, record) {
        Ok(o) => o.cloned(),
        Err(e) => return fail(e),
    };
    let id = ids::canonical(&given);
    let obj = declared.or_else(|| {
        id.as_ref()
            .and_then(|id| store.schema.object_by_prefix(&id[..3]).cloned())
    });
    let Some(obj) = obj else {
        return fail(SfError::dml(
            "MALFORMED_ID",
            format!("id value of incorrect type: {given}"),
            vec!["Id".into()],
        ));
    };
    let Some(id) = id.filter(|id| id[..3] == obj.key_prefix) else {
        return fail(SfError::dml(
            "MALFORMED_ID",
            format!("{} ID: id value of incorrect type: {given}", obj.label),
            vec!["Id".into()],
        ));
    };
    let result = match dml::update(store, ctx, &obj.name, &id, &body) {
        Ok(()) => Ok(None),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(missing_as_save_error(e)),
        Err(e) => Err(e),
    };
    Outcome {
        id: Some(id),
        result,
    }
}

/// A record-level version of a 404 (collections report per record).
fn missing_as_save_error(e: SfError) -> SfError {
    if e.code == "ENTITY_IS_DELETED" {
        SfError::dml("ENTITY_IS_DELETED", "entity is deleted", Vec::new())
    } else {
        SfError::dml(
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            Vec::new(),
        )
    }
}

fn delete_one(store: &mut Store, ctx: &Ctx, given: &str) -> Outcome {
    let Some((id, obj)) = ids::canonical(given).and_then(|id| {
        let obj = store.schema.object_by_prefix(&id[..3])?.name.clone();
        Some((id, obj))
    }) else {
        return fail(SfError::dml(
            "MALFORMED_ID",
            format!("invalid record id: {given}"),
            vec!["Id".into()],
        ));
    };
    let result = dml::delete(store, ctx, &obj, &id)
        .map(|()| None)
        .map_err(missing_as_save_error);
    Outcome {
        id: Some(id),
        result,
    }
}

/// `composite/sobjects`: POST create, PATCH update, DELETE `?ids=…&allOrNone=…`.
pub(crate) fn root(store: &mut Store, ctx: &Ctx, call: &Call) -> Reply {
    match call.method {
        Method::POST => match envelope(call) {
            Ok(env) => run_batch(
                store,
                env.all_or_none,
                &env.records,
                |s, r| create_one(s, ctx, r),
                false,
            ),
            Err(e) => e.into(),
        },
        Method::PATCH => match envelope(call) {
            Ok(env) => run_batch(
                store,
                env.all_or_none,
                &env.records,
                |s, r| update_one(s, ctx, r),
                true,
            ),
            Err(e) => e.into(),
        },
        Method::DELETE => {
            let ids: Vec<Value> = call
                .param("ids")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect();
            if ids.is_empty() {
                return SfError::bad_request("MISSING_ARGUMENT", "ids parameter is required")
                    .into();
            }
            if ids.len() > MAX_RECORDS {
                return SfError::bad_request(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                )
                .into();
            }
            let all_or_none = call.param("allOrNone") == Some("true");
            run_batch(
                store,
                all_or_none,
                &ids,
                |s, v| delete_one(s, ctx, v.as_str().unwrap_or_default()),
                true,
            )
        }
        _ => method_not_allowed(&call.method, "POST,PATCH,DELETE"),
    }
}

/// `GET composite/sobjects/{Type}?ids=…&fields=…` or `POST` with `{"ids":[…],"fields":[…]}`.
pub(crate) fn retrieve(store: &Store, call: &Call, t: &str) -> Reply {
    let Some(obj) = store.schema.object(t) else {
        return SfError::not_found().into();
    };
    let (ids, fields): (Vec<String>, String) = match call.method {
        Method::GET => (
            call.param("ids")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            call.param("fields").unwrap_or_default().to_string(),
        ),
        Method::POST => {
            let body = match call.object_body() {
                Ok(b) => b,
                Err(e) => return e.into(),
            };
            let list = |k: &str| -> Vec<String> {
                body.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            (list("ids"), list("fields").join(","))
        }
        _ => return method_not_allowed(&call.method, "GET,POST"),
    };
    if ids.is_empty() || fields.trim().is_empty() {
        return SfError::bad_request("MISSING_ARGUMENT", "ids and fields are required").into();
    }
    if ids.len() > 2000 {
        return SfError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 2000 records into this call",
        )
        .into();
    }
    let fields = match requested_fields(obj, &fields) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let base = call.base();
    let mut out = Vec::with_capacity(ids.len());
    for given in &ids {
        let Some(id) = ids::canonical(given) else {
            return SfError::dml(
                "MALFORMED_ID",
                format!("invalid record id: {given}"),
                vec!["Id".into()],
            )
            .into();
        };
        out.push(
            store
                .get(&obj.name, &id)
                .map(|r| record_json(obj, r, &base, Some(&fields)))
                .unwrap_or(Value::Null),
        );
    }
    Reply::ok(Value::Array(out))
}

/// `PATCH composite/sobjects/{Type}/{ExtField}` (v46.0+): upsert each record; results carry `created`.
pub(crate) fn upsert(store: &mut Store, ctx: &Ctx, call: &Call, t: &str, f: &str) -> Reply {
    if call.method != Method::PATCH {
        return method_not_allowed(&call.method, "PATCH");
    }
    let Some(obj) = store.schema.object(t).cloned() else {
        return SfError::not_found().into();
    };
    let field = match dml::external_id_field(&obj, f) {
        Ok(field) => field.name.clone(),
        Err(e) => return e.into(),
    };
    let env = match envelope(call) {
        Ok(env) => env,
        Err(e) => return e.into(),
    };
    let one = |s: &mut Store, raw: &Value| -> Outcome {
        let Some(record) = raw.as_object() else {
            return fail(SfError::json_parser("Each record must be a JSON object"));
        };
        let value = record
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&field))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string);
        let Some(value) = value else {
            return fail(SfError::dml(
                "MISSING_ARGUMENT",
                format!("{field} not specified"),
                vec![field.clone()],
            ));
        };
        match dml::upsert(s, ctx, &obj.name, &field, &value, record, false) {
            Ok(Upserted::Created(id)) => Outcome {
                id: Some(id),
                result: Ok(Some(true)),
            },
            Ok(Upserted::Updated(id)) => Outcome {
                id: Some(id),
                result: Ok(Some(false)),
            },
            Ok(Upserted::Multiple(found)) => fail(SfError::dml(
                "DUPLICATE_EXTERNAL_ID",
                format!(
                    "{field}: more than one record found for external id field: [{}]",
                    found
                        .iter()
                        .map(|i| ids::to15(i))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                vec![field.clone()],
            )),
            Err(e) => fail(e),
        }
    };
    run_batch(store, env.all_or_none, &env.records, one, true)
}
