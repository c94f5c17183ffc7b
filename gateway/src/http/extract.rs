//! `Path` and `Query` extractors whose refusals are problem documents (400, `code`
//! `invalid_path` / `invalid_query`) like every other error, instead of axum's plain-text
//! rejections (a query naming `limit` twice, a path segment that is not UTF-8).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The path parameters, as [`axum::extract::Path`] reads them.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| ApiError::invalid("invalid_path", None, rejection.body_text()))
    }
}

/// The query string, as [`axum::extract::Query`] reads it.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| ApiError::invalid("invalid_query", None, rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use axum::response::IntoResponse;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Page {
        #[allow(dead_code)]
        limit: Option<String>,
    }

    /// Before: `?limit=1&limit=2` got axum's `text/plain` 400, which the OpenAPI document
    /// does not describe (schemathesis found it). Now it is a problem document.
    #[tokio::test]
    async fn a_repeated_query_parameter_is_a_problem_document() {
        let (mut parts, ()) = Request::get("/v1/jobs?limit=1&limit=2")
            .body(())
            .unwrap()
            .into_parts();
        let Err(error) = Query::<Page>::from_request_parts(&mut parts, &()).await else {
            panic!("a repeated field is refused");
        };
        let response = error.into_response();
        assert_eq!(response.status(), 400);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["code"], "invalid_query");
        assert!(
            problem["detail"].as_str().unwrap().contains("limit"),
            "{problem}"
        );
    }
}
