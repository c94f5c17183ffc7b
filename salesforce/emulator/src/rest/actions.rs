//! `POST actions/custom/flow/{name}`: configured autolaunched flows that create one record per
//! input (see `FlowConfig`). Unknown flows answer 404 `NOT_FOUND`.

use http::{Method, StatusCode};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::{Call, Reply, method_not_allowed};
use crate::dml::{self, Ctx};
use crate::error::SfError;
use crate::server::AppState;
use crate::store::Store;

fn interview_guid() -> String {
    let mut rng = rand::rng();
    (0..38)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Runs each input as its own interview. Any failed interview makes the HTTP status 400 while
/// the successful ones stay committed, as on Salesforce.
pub(crate) fn flow(
    state: &AppState,
    store: &mut Store,
    ctx: &Ctx,
    call: &Call,
    name: &str,
) -> Reply {
    let Some(flow) = state.config.flows.iter().find(|f| f.name == name) else {
        return SfError::not_found().into();
    };
    if call.method != Method::POST {
        return method_not_allowed(&call.method, "POST");
    }
    let body = match call.object_body() {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let Some(inputs) = body.get("inputs").and_then(Value::as_array) else {
        return SfError::json_parser("Missing required 'inputs' parameter.").into();
    };
    let mut any_failed = false;
    let mut results = Vec::with_capacity(inputs.len());
    for input in inputs {
        let mut record = flow.defaults.clone();
        if let Some(input) = input.as_object() {
            for (var, field) in &flow.mapping {
                if let Some(v) = input.get(var) {
                    record.insert(field.clone(), v.clone());
                }
            }
        }
        let outcome = dml::create(store, ctx, &flow.creates, &record);
        results.push(match outcome {
            Ok(id) => {
                let mut outputs = Map::new();
                if let Some(obj) = store.schema.object(&flow.creates) {
                    outputs.insert(format!("{}Id", obj.name), Value::String(id.clone()));
                    if obj.name == "Case"
                        && let Some(n) = store.get("Case", &id).and_then(|r| r.get("CaseNumber"))
                    {
                        outputs.insert("CaseNumber".into(), n.clone());
                    }
                }
                outputs.insert("Flow__InterviewGuid".into(), Value::String(interview_guid()));
                outputs.insert("Flow__InterviewStatus".into(), Value::String("Finished".into()));
                json!({
                    "actionName": flow.name, "errors": null, "invocationId": null, "isSuccess": true,
                    "outcome": null, "outputValues": outputs, "sortOrder": -1, "version": 1,
                })
            }
            Err(e) => {
                any_failed = true;
                let wrapped = SfError::dml(
                    "UNKNOWN_EXCEPTION",
                    format!(
                        "An error occurred when executing a flow interview. {}: {}",
                        e.code, e.message
                    ),
                    e.fields.clone().unwrap_or_default(),
                );
                json!({
                    "actionName": flow.name, "errors": [wrapped.save_item()], "invocationId": null,
                    "isSuccess": false, "outcome": null, "outputValues": null, "sortOrder": -1, "version": 1,
                })
            }
        });
    }
    let status = if any_failed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Reply::json(status, Value::Array(results))
}
