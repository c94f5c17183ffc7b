//! `sobjects/…`: describe global, create, read, update, delete, and external-id
//! get/upsert/delete (per-object describe is in `describe.rs`).

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{Call, Reply, method_not_allowed};
use crate::dml::{self, Ctx, Upserted};
use crate::error::SfError;
use crate::ids;
use crate::schema::{ObjectDef, Record};
use crate::store::Store;

/// Serialises a stored record with `attributes`; `fields` limits the output (plus `Id`).
pub(crate) fn record_json(
    obj: &ObjectDef,
    record: &Record,
    base: &str,
    fields: Option<&[String]>,
) -> Value {
    let id = record.get("Id").and_then(Value::as_str).unwrap_or_default();
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": obj.name, "url": format!("{base}/sobjects/{}/{id}", obj.name)}),
    );
    match fields {
        Some(list) => {
            out.insert("Id".into(), Value::String(id.to_string()));
            for name in list {
                out.insert(
                    name.clone(),
                    record.get(name).cloned().unwrap_or(Value::Null),
                );
            }
        }
        None => {
            for f in &obj.fields {
                out.insert(
                    f.name.clone(),
                    record.get(&f.name).cloned().unwrap_or(Value::Null),
                );
            }
        }
    }
    Value::Object(out)
}

/// Resolves `?fields=A,B` to canonical names, or INVALID_FIELD.
pub(crate) fn requested_fields(obj: &ObjectDef, list: &str) -> Result<Vec<String>, SfError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            obj.field(name).map(|f| f.name.clone()).ok_or_else(|| {
                SfError::bad_request(
                    "INVALID_FIELD",
                    format!(
                        "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                        obj.name
                    ),
                )
            })
        })
        .collect()
}

/// The SaveResult of a create, with `Location`.
pub(crate) fn created_reply(call: &Call, object: &str, id: &str, upsert: bool) -> Reply {
    let mut body = json!({"id": id, "success": true, "errors": []});
    if upsert && call.version >= 46 {
        body["created"] = Value::Bool(true);
    }
    Reply::json(StatusCode::CREATED, body).with_header(
        "Location",
        format!("{}/sobjects/{object}/{id}", call.base()),
    )
}

pub(crate) fn object_info(obj: &ObjectDef, base: &str) -> Value {
    let writable = !crate::schema::READ_ONLY_OBJECTS.contains(&obj.name.as_str());
    json!({
        "name": obj.name,
        "label": obj.label,
        "keyPrefix": obj.key_prefix,
        "createable": writable,
        "updateable": writable,
        "deletable": writable,
        "queryable": true,
        "custom": false,
        "urls": {
            "sobject": format!("{base}/sobjects/{}", obj.name),
            "describe": format!("{base}/sobjects/{}/describe", obj.name),
            "rowTemplate": format!("{base}/sobjects/{}/{{ID}}", obj.name),
        }
    })
}

/// `GET sobjects`
pub(crate) fn describe_global(store: &Store, call: &Call) -> Reply {
    let base = call.base();
    let list: Vec<Value> = store
        .schema
        .objects
        .iter()
        .map(|o| object_info(o, &base))
        .collect();
    Reply::ok(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": list}))
}

/// `sobjects/{Type}`: GET basic info, POST create.
pub(crate) fn object_root(store: &mut Store, ctx: &Ctx, call: &Call, t: &str) -> Reply {
    let Some(obj) = store.schema.object(t).cloned() else {
        return SfError::not_found().into();
    };
    match call.method {
        Method::GET => {
            Reply::ok(json!({"objectDescribe": object_info(&obj, &call.base()), "recentItems": []}))
        }
        Method::POST => create(store, ctx, call, &obj),
        _ => method_not_allowed(&call.method, "GET,POST,HEAD"),
    }
}

fn create(store: &mut Store, ctx: &Ctx, call: &Call, obj: &ObjectDef) -> Reply {
    let body = match call.object_body() {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    match dml::create(store, ctx, &obj.name, body) {
        Ok(id) => created_reply(call, &obj.name, &id, false),
        Err(e) => e.into(),
    }
}

/// `sobjects/{Type}/{id}`: GET, PATCH, DELETE; `POST sobjects/{Type}/Id` creates.
pub(crate) fn record(store: &mut Store, ctx: &Ctx, call: &Call, t: &str, x: &str) -> Reply {
    let Some(obj) = store.schema.object(t).cloned() else {
        return SfError::not_found().into();
    };
    if x == "Id" && call.method == Method::POST && call.version >= 37 {
        return create(store, ctx, call, &obj);
    }
    let Some(id) = ids::canonical(x).filter(|id| id[..3] == obj.key_prefix) else {
        return SfError::external_id_not_found(x).into();
    };
    match call.method {
        Method::GET | Method::HEAD => match store.get(&obj.name, &id) {
            Some(r) => {
                let fields = match call.param("fields").map(|l| requested_fields(&obj, l)) {
                    Some(Ok(f)) => Some(f),
                    Some(Err(e)) => return e.into(),
                    None => None,
                };
                Reply::ok(record_json(&obj, r, &call.base(), fields.as_deref()))
            }
            None => dml::missing_record(store, &obj.name, &id).into(),
        },
        Method::PATCH => {
            let body = match call.object_body() {
                Ok(b) => b,
                Err(e) => return e.into(),
            };
            match dml::update(store, ctx, &obj.name, &id, body) {
                Ok(()) => Reply::no_content(),
                Err(e) => e.into(),
            }
        }
        Method::DELETE => match dml::delete(store, ctx, &obj.name, &id) {
            Ok(()) => Reply::no_content(),
            Err(e) => e.into(),
        },
        _ => method_not_allowed(&call.method, "GET,PATCH,DELETE,HEAD"),
    }
}

fn record_urls(call: &Call, object: &str, ids: &[String]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| Value::String(format!("{}/sobjects/{object}/{id}", call.base())))
            .collect(),
    )
}

/// `sobjects/{Type}/{ExtField}/{value}`: GET, PATCH (upsert), DELETE.
pub(crate) fn by_external_id(
    store: &mut Store,
    ctx: &Ctx,
    call: &Call,
    t: &str,
    f: &str,
    v: &str,
) -> Reply {
    let Some(obj) = store.schema.object(t).cloned() else {
        return SfError::not_found().into();
    };
    let field = match dml::external_id_field(&obj, f) {
        Ok(field) => field.clone(),
        Err(e) => return e.into(),
    };
    let matches = || -> Vec<String> {
        if field.name == "Id" {
            ids::canonical(v)
                .filter(|id| store.get(&obj.name, id).is_some())
                .into_iter()
                .collect()
        } else {
            dml::find_by_field(store, &obj.name, &field.name, v)
        }
    };
    match call.method {
        Method::GET | Method::HEAD => {
            let found = matches();
            match found.as_slice() {
                [] => SfError::not_found().into(),
                [id] => {
                    let fields = match call.param("fields").map(|l| requested_fields(&obj, l)) {
                        Some(Ok(f)) => Some(f),
                        Some(Err(e)) => return e.into(),
                        None => None,
                    };
                    match store.get(&obj.name, id) {
                        Some(r) => Reply::ok(record_json(&obj, r, &call.base(), fields.as_deref())),
                        None => SfError::not_found().into(),
                    }
                }
                _ => Reply::json(
                    StatusCode::MULTIPLE_CHOICES,
                    record_urls(call, &obj.name, &found),
                ),
            }
        }
        Method::DELETE => {
            let found = matches();
            match found.as_slice() {
                [] => SfError::not_found().into(),
                [id] => match dml::delete(store, ctx, &obj.name, id) {
                    Ok(()) => Reply::no_content(),
                    Err(e) => e.into(),
                },
                _ => Reply::json(
                    StatusCode::MULTIPLE_CHOICES,
                    record_urls(call, &obj.name, &found),
                ),
            }
        }
        Method::PATCH => {
            let body = match call.object_body() {
                Ok(b) => b,
                Err(e) => return e.into(),
            };
            let update_only = call.param("updateOnly") == Some("true");
            match dml::upsert(store, ctx, &obj.name, &field.name, v, body, update_only) {
                Ok(Upserted::Created(id)) => created_reply(call, &obj.name, &id, true),
                Ok(Upserted::Updated(id)) => {
                    if call.version >= 46 {
                        Reply::ok(
                            json!({"id": id, "success": true, "errors": [], "created": false}),
                        )
                    } else {
                        Reply::no_content()
                    }
                }
                Ok(Upserted::Multiple(found)) => Reply::json(
                    StatusCode::MULTIPLE_CHOICES,
                    record_urls(call, &obj.name, &found),
                ),
                Err(e) => e.into(),
            }
        }
        _ => method_not_allowed(&call.method, "GET,PATCH,DELETE,HEAD"),
    }
}
