//! `POST /__emulator/cases/{caseId}/comments` and `…/emails`: a rep answers on a Case, as a real
//! `005…` User distinct from the integration user; then the case webhook fires (public comments
//! and outbound emails only).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::webhook::{self, EventType};
use crate::dml::{self, Ctx};
use crate::error::SfError;
use crate::miaw::MiawError;
use crate::schema::Record;
use crate::server::{AppState, lock};
use crate::store::Store;

/// `User.Name` is at most 121 characters.
const REP_NAME_MAX: usize = 121;
/// The author's name when the request names none.
pub const DEFAULT_REP_NAME: &str = "Rep";

/// A refusal: the console's `{"message"}` or Salesforce's error array for a refused record.
enum Refusal {
    Console(MiawError),
    Record(SfError),
}

impl From<MiawError> for Refusal {
    fn from(e: MiawError) -> Self {
        Refusal::Console(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Console(e) => e.into_response(),
            Refusal::Record(e) => (e.status, Json(e.rest_body())).into_response(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentRequest {
    text: Option<String>,
    public: Option<bool>,
    rep_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    text: Option<String>,
    html: Option<String>,
    rep_name: Option<String>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], shape: &str) -> Result<T, MiawError> {
    serde_json::from_slice(body).map_err(|e| MiawError::bad_request(format!("Send {shape}: {e}")))
}

fn required_text(text: Option<String>) -> Result<String, MiawError> {
    text.filter(|t| !t.trim().is_empty())
        .ok_or_else(|| MiawError::bad_request("text is required and must not be blank."))
}

fn rep_name(name: Option<String>) -> Result<String, MiawError> {
    let name = name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_REP_NAME.to_string());
    if name.chars().count() > REP_NAME_MAX || name.chars().any(char::is_control) {
        return Err(MiawError::bad_request(format!(
            "rep_name must be at most {REP_NAME_MAX} characters without control characters."
        )));
    }
    Ok(name)
}

/// The Case by a 15- or 18-character id, or 404.
fn case(store: &Store, case_id: &str) -> Result<Record, MiawError> {
    crate::ids::canonical(case_id)
        .and_then(|id| store.get("Case", &id).cloned())
        .ok_or_else(|| MiawError::new(StatusCode::NOT_FOUND, "No Case with this id."))
}

/// The rep's User (`005…`, stable per name, never the integration user), added to the org on
/// first use so `CreatedBy.Name` resolves in SOQL.
fn rep_user(state: &AppState, store: &mut Store, name: &str, now: &str) -> String {
    let rep = crate::miaw::console::rep(name);
    if store.get("User", &rep.user_id).is_none() {
        let mut r = Record::new();
        if let Some(def) = store.schema.object("User") {
            for f in &def.fields {
                r.insert(f.name.clone(), f.default.clone().unwrap_or(Value::Null));
            }
        }
        let text = |s: &str| Value::String(s.to_string());
        let username = format!("rep.{}@handoff.local", rep.user_id.to_ascii_lowercase());
        r.insert("Id".into(), text(&rep.user_id));
        r.insert("IsDeleted".into(), Value::Bool(false));
        r.insert("Username".into(), text(&username));
        r.insert("Name".into(), text(name));
        r.insert("Email".into(), text(&username));
        for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            r.insert(f.into(), text(now));
        }
        let admin = state.integration_user_id();
        for f in ["CreatedById", "LastModifiedById"] {
            r.insert(f.into(), text(&admin));
        }
        store.insert("User", r);
    }
    rep.user_id
}

/// Inserts one record as the rep; returns (record, case). The rep's User is added only once the
/// record is accepted, so a refused request changes nothing.
fn insert_as_rep(
    state: &AppState,
    case_id: &str,
    name: &str,
    object: &str,
    fields: impl FnOnce(&Store, &Record) -> Result<Map<String, Value>, MiawError>,
) -> Result<(Record, Record), Refusal> {
    let mut store = lock(&state.store);
    let case = case(&store, case_id)?;
    let body = fields(&store, &case)?;
    let ctx = Ctx {
        user_id: crate::miaw::console::rep(name).user_id,
        now: dml::now_string(),
    };
    let id = dml::create(&mut store, &ctx, object, &body).map_err(Refusal::Record)?;
    rep_user(state, &mut store, name, &ctx.now);
    let record = store
        .get(object, &id)
        .cloned()
        .expect("inserted above under the same lock");
    Ok((record, case))
}

fn created(id: &Value) -> Response {
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

/// `POST /__emulator/cases/{caseId}/comments {"text", "public", "rep_name"?}` → 201 `{"id"}`.
pub(crate) async fn comment(
    State(state): State<Arc<AppState>>,
    Path(case_id): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let req: CommentRequest = parse(
            &body,
            r#"{"text": "…", "public": true|false, "rep_name": "…"}"#,
        )?;
        let text = required_text(req.text)?;
        let public = req
            .public
            .ok_or_else(|| MiawError::bad_request("public is required (true or false)."))?;
        let name = rep_name(req.rep_name)?;
        let (record, case) = insert_as_rep(&state, &case_id, &name, "CaseComment", |_, case| {
            let mut m = Map::new();
            m.insert("ParentId".into(), case["Id"].clone());
            m.insert("CommentBody".into(), json!(text));
            m.insert("IsPublished".into(), json!(public));
            Ok(m)
        })?;
        if public {
            webhook::fire(&state, EventType::CaseComment, &case, &record, &name);
        }
        Ok::<_, Refusal>(created(&record["Id"]))
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /__emulator/cases/{caseId}/emails {"text", "html"?, "rep_name"?}` → 201 `{"id"}`: an
/// outbound (sent) EmailMessage to the Case's `SuppliedEmail` (or its Contact's email).
pub(crate) async fn email(
    State(state): State<Arc<AppState>>,
    Path(case_id): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let req: EmailRequest = parse(&body, r#"{"text": "…", "html": "…", "rep_name": "…"}"#)?;
        let text = required_text(req.text)?;
        let name = rep_name(req.rep_name)?;
        let (record, case) = insert_as_rep(
            &state,
            &case_id,
            &name,
            "EmailMessage",
            |store, case| {
                let to = case
                .get("SuppliedEmail")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| contact_email(store, case))
                .ok_or_else(|| {
                    MiawError::new(
                        StatusCode::CONFLICT,
                        "The Case has no SuppliedEmail and no Contact with an email; set one before emailing the customer.",
                    )
                })?;
                let subject = match case.get("Subject").and_then(Value::as_str) {
                    Some(s) if !s.is_empty() => format!("Re: {s}"),
                    _ => format!(
                        "Re: Case {}",
                        case.get("CaseNumber")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    ),
                };
                let mut m = Map::new();
                m.insert("ParentId".into(), case["Id"].clone());
                m.insert("Incoming".into(), json!(false));
                m.insert("Status".into(), json!("3"));
                m.insert("ToAddress".into(), json!(to));
                m.insert("FromName".into(), json!(name));
                m.insert("Subject".into(), json!(subject));
                m.insert("TextBody".into(), json!(text));
                m.insert("HtmlBody".into(), json!(req.html));
                m.insert("MessageDate".into(), json!(dml::now_string()));
                Ok(m)
            },
        )?;
        webhook::fire(&state, EventType::EmailMessage, &case, &record, &name);
        Ok::<_, Refusal>(created(&record["Id"]))
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The email of the Case's Contact, if it has one.
fn contact_email(store: &Store, case: &Record) -> Option<String> {
    let contact_id = case.get("ContactId")?.as_str()?;
    let contact = store.get("Contact", contact_id)?;
    contact.get("Email")?.as_str().map(str::to_string)
}
