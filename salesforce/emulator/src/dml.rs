//! Record writes with Salesforce's validation rules and error texts.
//!
//! Check order per request body: `Id` present → unknown field → read-only field → value type →
//! length → email format → reference id; then required fields, then uniqueness. The first failure
//! is returned (Salesforce also usually reports one).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::error::SfError;
use crate::ids;
use crate::schema::{FieldDef, FieldKind, ObjectDef, Record};
use crate::store::Store;

/// Who writes, and when.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) user_id: String,
    pub(crate) now: String,
}

impl Ctx {
    pub(crate) fn new(user_id: &str) -> Self {
        Ctx {
            user_id: user_id.to_string(),
            now: now_string(),
        }
    }
}

/// Salesforce's datetime format: `2026-01-01T10:00:00.000+0000`.
pub(crate) fn now_string() -> String {
    format_datetime(Utc::now())
}

pub(crate) fn format_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Update,
}

/// Result of an upsert.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Upserted {
    Created(String),
    Updated(String),
    /// Several records match: their ids.
    Multiple(Vec<String>),
}

pub(crate) fn object<'a>(store: &'a Store, name: &str) -> Result<&'a ObjectDef, SfError> {
    store.schema.object(name).ok_or_else(SfError::not_found)
}

/// Organization, Profile, PermissionSet and PermissionSetAssignment are read-only through the
/// API (the emulator makes them from its configuration).
fn writable_object<'a>(store: &'a Store, name: &str, op: &str) -> Result<&'a ObjectDef, SfError> {
    let obj = object(store, name)?;
    if crate::schema::READ_ONLY_OBJECTS.contains(&obj.name.as_str()) {
        return Err(SfError::dml(
            "INVALID_TYPE_FOR_OPERATION",
            format!("entity type {} does not support {op}", obj.name),
            Vec::new(),
        ));
    }
    Ok(obj)
}

/// Inserts a record; returns its 18-char id.
pub(crate) fn create(
    store: &mut Store,
    ctx: &Ctx,
    object_name: &str,
    body: &Map<String, Value>,
) -> Result<String, SfError> {
    let obj = writable_object(store, object_name, "insert")?.clone();
    let values = check_body(store, &obj, body, Op::Create)?;
    let missing: Vec<String> = obj
        .fields
        .iter()
        .filter(|f| f.required && values.get(&f.name).is_none_or(Value::is_null))
        .map(|f| f.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(SfError::dml(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            missing,
        ));
    }
    check_unique(store, &obj, &values, None)?;
    let comments = case_comments_value(&obj, &values);
    check_internal_comment(store, comments.as_deref())?;

    let id = store.mint_id(&obj.name);
    let mut record = Record::new();
    for f in &obj.fields {
        let v = values
            .get(&f.name)
            .cloned()
            .or_else(|| f.default.clone())
            .unwrap_or(Value::Null);
        record.insert(f.name.clone(), v);
    }
    record.insert("Id".into(), Value::String(id.clone()));
    record.insert("IsDeleted".into(), Value::Bool(false));
    for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        record.insert(f.into(), Value::String(ctx.now.clone()));
    }
    for f in ["CreatedById", "LastModifiedById"] {
        record.insert(f.into(), Value::String(ctx.user_id.clone()));
    }
    if obj.name == "Case" {
        record.insert("CaseNumber".into(), Value::String(store.next_case_number()));
        if record.get("OwnerId").is_none_or(Value::is_null) {
            record.insert("OwnerId".into(), Value::String(ctx.user_id.clone()));
        }
        derive_case(&mut record, ctx, true);
    }
    store.insert(&obj.name, record);
    if let Some(text) = comments {
        insert_internal_comment(store, ctx, &id, text)?;
    }
    Ok(id)
}

/// Updates fields of an existing record.
pub(crate) fn update(
    store: &mut Store,
    ctx: &Ctx,
    object_name: &str,
    id18: &str,
    body: &Map<String, Value>,
) -> Result<(), SfError> {
    let obj = writable_object(store, object_name, "update")?.clone();
    if store.get(&obj.name, id18).is_none() {
        return Err(missing_record(store, &obj.name, id18));
    }
    let values = check_body(store, &obj, body, Op::Update)?;
    if let Some(f) = obj
        .fields
        .iter()
        .find(|f| f.required && values.get(&f.name).is_some_and(Value::is_null))
    {
        return Err(SfError::dml(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", f.name),
            vec![f.name.clone()],
        ));
    }
    check_unique(store, &obj, &values, Some(id18))?;
    let comments = case_comments_value(&obj, &values);
    check_internal_comment(store, comments.as_deref())?;
    let record = store
        .get_mut(&obj.name, id18)
        .expect("checked above under the same lock");
    let was_closed = record.get("IsClosed").and_then(Value::as_bool) == Some(true);
    for (k, v) in values {
        record.insert(k, v);
    }
    record.insert("LastModifiedDate".into(), Value::String(ctx.now.clone()));
    record.insert("SystemModstamp".into(), Value::String(ctx.now.clone()));
    record.insert(
        "LastModifiedById".into(),
        Value::String(ctx.user_id.clone()),
    );
    if obj.name == "Case" {
        derive_case(record, ctx, !was_closed);
    }
    if let Some(text) = comments {
        insert_internal_comment(store, ctx, id18, text)?;
    }
    Ok(())
}

/// Deletes a record. Case deletes cascade to its CaseComments and EmailMessages (master-detail
/// on Salesforce); lookups to the deleted record elsewhere are cleared.
pub(crate) fn delete(
    store: &mut Store,
    ctx: &Ctx,
    object_name: &str,
    id18: &str,
) -> Result<(), SfError> {
    let obj = writable_object(store, object_name, "delete")?.clone();
    if store.remove(&obj.name, id18, &ctx.now).is_none() {
        return Err(missing_record(store, &obj.name, id18));
    }
    if obj.name == "Case" {
        for child in ["CaseComment", "EmailMessage"] {
            let ids: Vec<String> = store
                .rows(child)
                .iter()
                .filter(|r| r.get("ParentId").and_then(Value::as_str) == Some(id18))
                .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
                .collect();
            for id in ids {
                store.remove(child, &id, &ctx.now);
            }
        }
    }
    let objects: Vec<ObjectDef> = store.schema.objects.clone();
    for o in &objects {
        for f in o
            .fields
            .iter()
            .filter(|f| f.reference_to.as_deref() == Some(obj.name.as_str()))
        {
            let ids: Vec<String> = store
                .rows(&o.name)
                .iter()
                .filter(|r| r.get(&f.name).and_then(Value::as_str) == Some(id18))
                .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
                .collect();
            for id in ids {
                if let Some(r) = store.get_mut(&o.name, &id) {
                    r.insert(f.name.clone(), Value::Null);
                }
            }
        }
    }
    Ok(())
}

/// 404 for an id that is not (or no longer) there.
pub(crate) fn missing_record(store: &Store, object: &str, id18: &str) -> SfError {
    if store.is_deleted(object, id18) {
        SfError::new(
            http::StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
        )
    } else {
        SfError::not_found()
    }
}

/// Ids of live records whose `field` equals `value` (case-insensitive, as external ids are).
pub(crate) fn find_by_field(store: &Store, object: &str, field: &str, value: &str) -> Vec<String> {
    store
        .rows(object)
        .iter()
        .filter(|r| {
            r.get(field)
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
        .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Resolves the external-id field segment of `sobjects/{Type}/{Field}/{value}`.
pub(crate) fn external_id_field<'a>(
    obj: &'a ObjectDef,
    segment: &str,
) -> Result<&'a FieldDef, SfError> {
    obj.field(segment)
        .filter(|f| f.external_id || f.name == "Id")
        .ok_or_else(|| SfError::external_id_not_found(segment))
}

/// Upsert by external id. `body` must not set the external-id field to another value.
pub(crate) fn upsert(
    store: &mut Store,
    ctx: &Ctx,
    object_name: &str,
    field_name: &str,
    value: &str,
    body: &Map<String, Value>,
    update_only: bool,
) -> Result<Upserted, SfError> {
    let obj = object(store, object_name)?.clone();
    let field = external_id_field(&obj, field_name)?.clone();
    let mut body = body.clone();
    if let Some(key) = body
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&field.name))
        .cloned()
    {
        let given = body.remove(&key).unwrap_or(Value::Null);
        if given.as_str() != Some(value) {
            return Err(SfError::dml(
                "INVALID_FIELD",
                format!(
                    "The value of the external ID field {} in the request body ({}) does not match the value in the URL ({value})",
                    field.name,
                    display_value(&given)
                ),
                vec![field.name.clone()],
            ));
        }
    }
    let matches = if field.name == "Id" {
        ids::canonical(value)
            .filter(|id| store.get(&obj.name, id).is_some())
            .into_iter()
            .collect()
    } else {
        find_by_field(store, &obj.name, &field.name, value)
    };
    match matches.len() {
        0 => {
            if update_only || field.name == "Id" {
                return Err(SfError::not_found());
            }
            body.insert(field.name.clone(), Value::String(value.to_string()));
            create(store, ctx, &obj.name, &body).map(Upserted::Created)
        }
        1 => {
            let id = matches.into_iter().next().unwrap_or_default();
            update(store, ctx, &obj.name, &id, &body)?;
            Ok(Upserted::Updated(id))
        }
        _ => Ok(Upserted::Multiple(matches)),
    }
}

fn case_comments_value(obj: &ObjectDef, values: &Map<String, Value>) -> Option<String> {
    if obj.name != "Case" {
        return None;
    }
    values
        .get("Comments")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Validates the CaseComment that `Case.Comments` will add, before anything is written, so a
/// failing comment (4,000 *bytes* for CommentBody) leaves the Case untouched.
fn check_internal_comment(store: &Store, text: Option<&str>) -> Result<(), SfError> {
    let Some(text) = text else {
        return Ok(());
    };
    let field = store
        .schema
        .object("CaseComment")
        .and_then(|o| o.field("CommentBody"))
        .cloned();
    match field {
        Some(f) => normalise(store, &f, &Value::String(text.to_string())).map(|_| ()),
        None => Ok(()),
    }
}

/// Writing `Case.Comments` adds an internal (unpublished) CaseComment, as on Salesforce.
fn insert_internal_comment(
    store: &mut Store,
    ctx: &Ctx,
    case_id: &str,
    text: String,
) -> Result<(), SfError> {
    let mut body = Map::new();
    body.insert("ParentId".into(), Value::String(case_id.to_string()));
    body.insert("CommentBody".into(), Value::String(text));
    create(store, ctx, "CaseComment", &body).map(|_| ())
}

fn derive_case(record: &mut Record, ctx: &Ctx, may_close: bool) {
    let closed = record
        .get("Status")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("Closed"));
    record.insert("IsClosed".into(), Value::Bool(closed));
    if !closed {
        record.insert("ClosedDate".into(), Value::Null);
    } else if may_close || record.get("ClosedDate").is_none_or(Value::is_null) {
        record.insert("ClosedDate".into(), Value::String(ctx.now.clone()));
    }
}

/// Validates a request body and returns canonical field name → normalised value.
fn check_body(
    store: &Store,
    obj: &ObjectDef,
    body: &Map<String, Value>,
    op: Op,
) -> Result<Map<String, Value>, SfError> {
    let mut out = Map::new();
    for (key, raw) in body {
        if key == "attributes" {
            continue;
        }
        if key.eq_ignore_ascii_case("Id") {
            return Err(SfError::bad_request(
                "INVALID_FIELD",
                "The Id field should not be specified in the sobject data.",
            ));
        }
        let Some(field) = obj.field(key) else {
            return Err(SfError::bad_request(
                "INVALID_FIELD",
                format!("No such column '{key}' on sobject of type {}", obj.name),
            ));
        };
        let writable = match op {
            Op::Create => field.createable,
            Op::Update => field.updateable,
        };
        if !writable {
            return Err(SfError::dml(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    field.name
                ),
                vec![field.name.clone()],
            ));
        }
        let value = normalise(store, field, raw)?;
        out.insert(field.name.clone(), value);
    }
    Ok(out)
}

fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn token_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn type_error(type_name: &str, v: &Value) -> SfError {
    SfError::json_parser(format!(
        "Cannot deserialize instance of {type_name} from {} value {} or request may be missing a required field",
        token_name(v),
        display_value(v)
    ))
}

fn normalise(store: &Store, field: &FieldDef, raw: &Value) -> Result<Value, SfError> {
    if raw.is_null() {
        return Ok(match field.kind {
            FieldKind::Boolean => Value::Bool(false),
            _ => Value::Null,
        });
    }
    match field.kind {
        FieldKind::Boolean => match raw {
            Value::Bool(_) => Ok(raw.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(type_error("boolean", raw)),
        },
        FieldKind::Int => match raw {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(raw.clone()),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| type_error("int", raw)),
            _ => Err(type_error("int", raw)),
        },
        FieldKind::Double => match raw {
            Value::Number(_) => Ok(raw.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| type_error("double", raw)),
            _ => Err(type_error("double", raw)),
        },
        FieldKind::DateTime => {
            let s = raw.as_str().ok_or_else(|| type_error("datetime", raw))?;
            parse_datetime(s)
                .map(|t| Value::String(format_datetime(t)))
                .ok_or_else(|| type_error("datetime", raw))
        }
        FieldKind::Date => {
            let s = raw.as_str().ok_or_else(|| type_error("date", raw))?;
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| type_error("date", raw))
        }
        FieldKind::Id | FieldKind::Reference => {
            let s = raw.as_str().ok_or_else(|| type_error("string", raw))?;
            if s.is_empty() {
                return Ok(Value::Null);
            }
            check_reference(store, field, s).map(Value::String)
        }
        FieldKind::String
        | FieldKind::Textarea
        | FieldKind::Email
        | FieldKind::Phone
        | FieldKind::Picklist => {
            let s = match raw {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(type_error("string", raw)),
            };
            if s.is_empty() {
                return Ok(Value::Null);
            }
            // Email fields check the address (length included) first: an address over the
            // field's length is an invalid address, not STRING_TOO_LONG.
            if field.kind == FieldKind::Email
                && (!valid_email(&s) || field.length.is_some_and(|max| s.chars().count() > max))
            {
                return Err(SfError::dml(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", field.label),
                    vec![field.name.clone()],
                ));
            }
            if let Some(max) = field.length {
                let len = if field.length_in_bytes {
                    s.len()
                } else {
                    s.chars().count()
                };
                if len > max {
                    return Err(SfError::dml(
                        "STRING_TOO_LONG",
                        format!(
                            "{}: data value too large: {s} (max length={max})",
                            field.label
                        ),
                        vec![field.name.clone()],
                    ));
                }
            }
            Ok(Value::String(s))
        }
    }
}

pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// A reference value: a well-formed id (else MALFORMED_ID), of the target object's type (else
/// FIELD_INTEGRITY_EXCEPTION), naming a live record (else INVALID_CROSS_REFERENCE_KEY).
fn check_reference(store: &Store, field: &FieldDef, s: &str) -> Result<String, SfError> {
    let incorrect_type = |code: &str| {
        SfError::dml(
            code,
            format!("{}: id value of incorrect type: {s}", field.label),
            vec![field.name.clone()],
        )
    };
    let id = ids::canonical(s).ok_or_else(|| incorrect_type("MALFORMED_ID"))?;
    let Some(target) = field.reference_to.as_deref() else {
        return Ok(id);
    };
    let target_prefix = store
        .schema
        .object(target)
        .map(|o| o.key_prefix.as_str())
        .unwrap_or_default();
    if id[..3] != *target_prefix {
        return Err(incorrect_type("FIELD_INTEGRITY_EXCEPTION"));
    }
    if store.get(target, &id).is_none() {
        return Err(SfError::dml(
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            vec![field.name.clone()],
        ));
    }
    Ok(id)
}

/// The address check Salesforce applies to email fields (a pragmatic subset of RFC 5322).
/// The local part is ASCII (an org without Email Address Internationalization refuses
/// non-ASCII); consecutive and trailing periods are allowed, a leading one is not (Salesforce
/// Help 000384328, "Email Address Format Technical Standards Validation").
pub(crate) fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

fn check_unique(
    store: &Store,
    obj: &ObjectDef,
    values: &Map<String, Value>,
    self_id: Option<&str>,
) -> Result<(), SfError> {
    for f in obj.fields.iter().filter(|f| f.unique) {
        let Some(v) = values.get(&f.name).and_then(Value::as_str) else {
            continue;
        };
        if let Some(other) = find_by_field(store, &obj.name, &f.name, v)
            .into_iter()
            .find(|id| Some(id.as_str()) != self_id)
        {
            return Err(SfError::dml(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: {} duplicates value on record with id: {}",
                    f.name,
                    ids::to15(&other)
                ),
                Vec::new(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn emails() {
        assert!(valid_email("ann@example.com"));
        assert!(valid_email("a.b+c@sub.example.co"));
        assert!(!valid_email("Not a real email address"));
        assert!(!valid_email("ann@example"));
        assert!(!valid_email("@example.com"));
        assert!(!valid_email("ann@@example.com"));
        assert!(valid_email("a..a@test.jp"));
        assert!(valid_email("a..@test.jp"));
        assert!(!valid_email(".a@test.jp"));
        assert!(!valid_email("jos\u{e9}@example.com"));
    }
}
