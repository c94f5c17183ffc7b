//! The OpenAPI document against the code: the committed `docs/openapi.json` is what the code
//! generates, every documented operation is routed, and every `/v1` route is documented.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use handoff_tests::{Db, spawn_app};
use serde_json::Value;

const REGENERATE: &str = "cargo run -q -- openapi > docs/openapi.json";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn document() -> Value {
    serde_json::from_str(&gateway::http::openapi::to_json()).expect("the document is JSON")
}

/// Every `(path, methods)` the document describes.
fn operations(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("path item")
                .keys()
                .filter(|k| {
                    matches!(
                        k.as_str(),
                        "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
                    )
                })
                .map(|m| m.to_ascii_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[test]
fn committed_document_is_the_generated_one() {
    let generated = gateway::http::openapi::to_json();
    let committed = std::fs::read_to_string(workspace().join("docs/openapi.json"))
        .unwrap_or_else(|e| panic!("docs/openapi.json cannot be read ({e}); run `{REGENERATE}`"));
    assert!(
        generated == committed,
        "docs/openapi.json differs from the document the code generates; regenerate it with \
         `{REGENERATE}` and commit it"
    );
}

#[test]
fn document_is_openapi_3_1_and_self_consistent() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Every reference resolves inside the document.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external reference {reference}"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }

    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with("/v1/"), "{path} is outside /v1");
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{} {path}", method.to_ascii_uppercase());
            let responses = op["responses"].as_object().expect("responses");
            let secured = op.get("security").is_some();
            // A bearer-token operation documents its refusals, and every POST with a token
            // its Idempotency-Key header.
            if secured {
                for status in ["401", "403"] {
                    assert!(responses.contains_key(status), "{at} lacks {status}");
                }
                if method == "post" {
                    let params = op["parameters"].as_array().expect("parameters");
                    assert!(
                        params
                            .iter()
                            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
                        "{at} lacks the Idempotency-Key header"
                    );
                }
            }
            // Every error answer is a problem document.
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let response = match response.get("$ref").and_then(Value::as_str) {
                        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
                        None => response,
                    };
                    let schema = &response["content"]["application/problem+json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/Problem",
                        "{at} {status} is not application/problem+json"
                    );
                }
            }
        }
    }
    let problem = &doc["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == field),
            "Problem.{field}"
        );
    }
    assert!(problem["properties"]["field"].is_object());
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Every documented (method, path) is routed, and nothing else is routed at that path: a
/// request with a method no route takes is answered 405 by the path's method router (the
/// router's fallback would answer 404), with `Allow` listing exactly the documented methods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed() {
    let app = spawn_app(Db::Sqlite).await;
    let doc = document();
    let ops = operations(&doc);
    assert!(ops.len() >= 15, "{ops:?}");
    for (path, methods) in &ops {
        let filled = fill_path_params(path);
        let response = app
            .http
            .request(reqwest::Method::PATCH, app.url(&filled))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            405,
            "PATCH {filled}: {path} is documented but not routed (the fallback answered)"
        );
        let allow: BTreeSet<String> = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty() && m != "HEAD")
            .collect();
        assert_eq!(
            &allow, methods,
            "{path}: the methods routed are not the methods documented"
        );
    }
    // The document is served, unauthenticated, as generated.
    let served = app
        .http
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/json");
    assert_eq!(
        served.text().await.unwrap(),
        gateway::http::openapi::to_json()
    );
}

fn fill_path_params(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `/v1` route is documented: routes come from `utoipa_axum::routes!`, which takes the
/// path from the handler's `#[utoipa::path]`. A `/v1` path given to axum's `route`,
/// `route_service`, `nest` or `nest_service` anywhere in the gateway would be served without
/// being documented; this finds any.
#[test]
fn no_v1_route_bypasses_the_document() {
    let mut offenders = Vec::new();
    let mut files = 0;
    for file in rust_files(&workspace().join("gateway/src")) {
        files += 1;
        let text = std::fs::read_to_string(&file).unwrap();
        for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            for (at, _) in text.match_indices(call) {
                let rest = text[at + call.len()..].trim_start();
                if rest.starts_with("\"/v1") {
                    let line = text[..at].lines().count();
                    offenders.push(format!("{}:{line}", file.display()));
                }
            }
        }
    }
    assert!(files > 50, "the gateway's sources were not found");
    assert!(
        offenders.is_empty(),
        "/v1 routes added without `routes!` (so not in the OpenAPI document): {offenders:?}; \
         annotate the handler with #[utoipa::path] and add it with `.routes(routes!(handler))`, \
         then run `{REGENERATE}`"
    );
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}
