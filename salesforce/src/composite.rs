//! The Composite resource (`POST /services/data/vXX.X/composite`): up to 25 subrequests in
//! one API call, optionally all-or-none, with `@{referenceId.field}` references between
//! them.
//!
//! Salesforce answers HTTP 200 even when subrequests fail; use
//! [`CompositeResponse::first_failure`] to find the failure that matters (with
//! `allOrNone`, every other subrequest reports a knock-on `PROCESSING_HALTED`).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, Error, is_knock_on};
use crate::ids::SalesforceId;
use crate::path;

/// Most subrequests Salesforce accepts in one composite request.
pub const MAX_SUBREQUESTS: usize = 25;

/// One subrequest of a [`CompositeRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct SubRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: Method,
    /// Either a path relative to `/services/data/{version}` (`/sobjects/Case`) or a full
    /// `/services/data/vXX.X/…` path.
    pub url: String,
    /// Letters, digits and `_`; unique within the request.
    pub reference_id: String,
    /// JSON body, if any.
    pub body: Option<Value>,
}

/// A composite request under construction.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeRequest {
    all_or_none: bool,
    collate_subrequests: Option<bool>,
    subrequests: Vec<SubRequest>,
}

impl CompositeRequest {
    /// An empty request. With `all_or_none`, any failure rolls back every subrequest.
    pub fn new(all_or_none: bool) -> Self {
        CompositeRequest {
            all_or_none,
            collate_subrequests: None,
            subrequests: Vec::new(),
        }
    }

    /// Sets `collateSubrequests` explicitly (Salesforce's default is `true` from v49.0).
    pub fn collate_subrequests(&mut self, collate: bool) -> &mut Self {
        self.collate_subrequests = Some(collate);
        self
    }

    /// Adds a subrequest. `url` is a path relative to `/services/data/{version}` (the client
    /// adds the prefix) or a full `/services/data/vXX.X/…` path.
    ///
    /// Refused with [`Error::Invalid`] past [`MAX_SUBREQUESTS`], for a `referenceId` that is
    /// empty, repeated or not made of letters, digits and `_`, for another HTTP method, and
    /// for a URL with whitespace or a scheme.
    pub fn add(
        &mut self,
        method: Method,
        url: &str,
        reference_id: &str,
        body: Option<Value>,
    ) -> Result<&mut Self, Error> {
        if self.subrequests.len() >= MAX_SUBREQUESTS {
            return Err(Error::Invalid(format!(
                "a composite request holds at most {MAX_SUBREQUESTS} subrequests"
            )));
        }
        if ![
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ]
        .contains(&method)
        {
            return Err(Error::Invalid(format!(
                "composite subrequests cannot use method {method}"
            )));
        }
        if reference_id.is_empty()
            || !reference_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(Error::Invalid(format!(
                "referenceId {reference_id:?} must be letters, digits and '_'"
            )));
        }
        if self
            .subrequests
            .iter()
            .any(|s| s.reference_id == reference_id)
        {
            return Err(Error::Invalid(format!(
                "referenceId {reference_id:?} is used twice"
            )));
        }
        if url.is_empty() || url.contains("://") || url.chars().any(char::is_whitespace) {
            return Err(Error::Invalid(
                "a composite subrequest URL is a path such as /sobjects/Case".to_owned(),
            ));
        }
        let url = if url.starts_with('/') {
            url.to_owned()
        } else {
            format!("/{url}")
        };
        self.subrequests.push(SubRequest {
            method,
            url,
            reference_id: reference_id.to_owned(),
            body,
        });
        Ok(self)
    }

    /// Adds `POST /sobjects/{sobject}` creating a record.
    pub fn create(
        &mut self,
        sobject: &str,
        body: Value,
        reference_id: &str,
    ) -> Result<&mut Self, Error> {
        path::record_body(&body)?;
        let url = path::sobject(sobject)?;
        self.add(Method::POST, &url, reference_id, Some(body))
    }

    /// Adds `PATCH /sobjects/{sobject}/{ext_field}/{value}`: an upsert by external Id.
    /// The value is path-escaped and the external-Id field is removed from the body.
    pub fn upsert(
        &mut self,
        sobject: &str,
        ext_field: &str,
        value: &str,
        body: Value,
        reference_id: &str,
    ) -> Result<&mut Self, Error> {
        let url = path::external_id(sobject, ext_field, value)?;
        let body = path::upsert_body(ext_field, &body)?;
        self.add(Method::PATCH, &url, reference_id, Some(body))
    }

    /// Adds `PATCH /sobjects/{sobject}/{id}` updating a record. `id` may be a reference
    /// such as `@{refCase.id}`, so it is passed as a string and only checked for `/`.
    pub fn update(
        &mut self,
        sobject: &str,
        id: &str,
        body: Value,
        reference_id: &str,
    ) -> Result<&mut Self, Error> {
        path::record_body(&body)?;
        if id.is_empty() || id.contains(['/', '?', '#']) {
            return Err(Error::Invalid(
                "record Id reference cannot contain '/', '?' or '#'".to_owned(),
            ));
        }
        let url = format!("{}/{id}", path::sobject(sobject)?);
        self.add(Method::PATCH, &url, reference_id, Some(body))
    }

    /// Number of subrequests so far.
    pub fn len(&self) -> usize {
        self.subrequests.len()
    }

    /// True when no subrequest was added.
    pub fn is_empty(&self) -> bool {
        self.subrequests.is_empty()
    }

    /// The subrequests, in order.
    pub fn subrequests(&self) -> &[SubRequest] {
        &self.subrequests
    }

    /// Whether the request is all-or-none.
    pub fn all_or_none(&self) -> bool {
        self.all_or_none
    }

    /// The JSON body for API version `api_version` (e.g. `v66.0`): relative URLs get the
    /// `/services/data/{api_version}` prefix.
    pub fn to_json(&self, api_version: &str) -> Value {
        let subrequests: Vec<Value> = self
            .subrequests
            .iter()
            .map(|s| {
                let url = if s.url.starts_with("/services/") {
                    s.url.clone()
                } else {
                    format!("/services/data/{api_version}{}", s.url)
                };
                let mut sub = json!({
                    "method": s.method.as_str(),
                    "url": url,
                    "referenceId": s.reference_id,
                });
                if let Some(body) = &s.body {
                    sub["body"] = body.clone();
                }
                sub
            })
            .collect();
        let mut request = json!({
            "allOrNone": self.all_or_none,
            "compositeRequest": subrequests,
        });
        if let Some(collate) = self.collate_subrequests {
            request["collateSubrequests"] = Value::Bool(collate);
        }
        request
    }
}

/// The answer to a composite request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeResponse {
    /// One entry per subrequest, in request order.
    pub composite_response: Vec<SubResponse>,
}

/// The answer to one subrequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubResponse {
    /// The subrequest's body (a SaveResult, a record, an error array, or `null`).
    #[serde(default)]
    pub body: Value,
    /// Response headers of the subrequest (e.g. `Location`).
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    /// The subrequest's HTTP status.
    pub http_status_code: u16,
    /// The subrequest's `referenceId`.
    pub reference_id: String,
}

impl SubResponse {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.http_status_code)
    }

    /// The record Id in the body (`{"id": …}` of a SaveResult or a record's `Id`), if any.
    pub fn id(&self) -> Option<SalesforceId> {
        self.body
            .get("id")
            .or_else(|| self.body.get("Id"))
            .and_then(Value::as_str)
            .and_then(|id| SalesforceId::parse(id).ok())
    }

    /// This subrequest's failure as an [`Error`], or `None` if it succeeded.
    ///
    /// A 300 (an upsert that matched several records) becomes [`Error::MultipleMatches`];
    /// other statuses ≥ 300 become [`Error::Api`] with the subrequest's status. A 2xx whose
    /// body is a list of SaveResults (a nested sObject Collections call) fails if any of
    /// them failed.
    pub fn error(&self) -> Option<Error> {
        if self.http_status_code == 300 {
            let urls = self
                .body
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|u| u.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            return Some(Error::MultipleMatches(urls));
        }
        if self.http_status_code >= 300 {
            let body = serde_json::to_vec(&self.body).unwrap_or_default();
            return Some(Error::Api {
                status: self.http_status_code,
                errors: ApiError::parse_body(self.http_status_code, &body),
                retry_after: None,
            });
        }
        let failed: Vec<ApiError> = self
            .body
            .as_array()?
            .iter()
            .filter(|item| item.get("success") == Some(&Value::Bool(false)))
            .flat_map(|item| {
                let body = serde_json::to_vec(item).unwrap_or_default();
                ApiError::parse_body(self.http_status_code, &body)
            })
            .collect();
        (!failed.is_empty()).then_some(Error::Api {
            status: self.http_status_code,
            errors: failed,
            retry_after: None,
        })
    }
}

impl CompositeResponse {
    /// The subresponse with this `referenceId`.
    pub fn get(&self, reference_id: &str) -> Option<&SubResponse> {
        self.composite_response
            .iter()
            .find(|s| s.reference_id == reference_id)
    }

    /// True if every subrequest succeeded.
    pub fn is_success(&self) -> bool {
        self.first_failure().is_none()
    }

    /// The failure that caused the others: the first failed subrequest whose errors are
    /// not all knock-on `PROCESSING_HALTED` / `ALL_OR_NONE_OPERATION_ROLLED_BACK`. If only
    /// knock-on failures exist, the first of them. `None` when everything succeeded.
    pub fn first_failure(&self) -> Option<Error> {
        let mut knock_on = None;
        for error in self
            .composite_response
            .iter()
            .filter_map(SubResponse::error)
        {
            if is_knock_on(&error) {
                knock_on.get_or_insert(error);
            } else {
                return Some(error);
            }
        }
        knock_on
    }

    /// Reference Ids of the failed subrequests, in order.
    pub fn failed_references(&self) -> Vec<&str> {
        self.composite_response
            .iter()
            .filter(|s| s.error().is_some())
            .map(|s| s.reference_id.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    #[test]
    fn builds_the_salesforce_envelope() {
        let mut request = CompositeRequest::new(true);
        request
            .upsert(
                "Case",
                "Handoff_Session_Id__c",
                "sess/1",
                json!({"Subject": "Printer", "Handoff_Session_Id__c": "sess/1"}),
                "refCase",
            )
            .unwrap()
            .create(
                "CaseComment",
                json!({"ParentId": "@{refCase.id}", "CommentBody": "Transcript 1/1", "IsPublished": false}),
                "refComment1",
            )
            .unwrap()
            .add(Method::GET, "/services/data/v60.0/sobjects/Case/@{refCase.id}?fields=CaseNumber", "refRead", None)
            .unwrap();
        assert_eq!(request.len(), 3);
        assert_eq!(
            request.to_json("v66.0"),
            json!({
                "allOrNone": true,
                "compositeRequest": [
                    {"method": "PATCH", "url": "/services/data/v66.0/sobjects/Case/Handoff_Session_Id__c/sess%2F1",
                     "referenceId": "refCase", "body": {"Subject": "Printer"}},
                    {"method": "POST", "url": "/services/data/v66.0/sobjects/CaseComment", "referenceId": "refComment1",
                     "body": {"ParentId": "@{refCase.id}", "CommentBody": "Transcript 1/1", "IsPublished": false}},
                    {"method": "GET", "url": "/services/data/v60.0/sobjects/Case/@{refCase.id}?fields=CaseNumber",
                     "referenceId": "refRead"}
                ]
            })
        );
        request.collate_subrequests(false);
        assert_eq!(request.to_json("v66.0")["collateSubrequests"], json!(false));
    }

    #[test]
    fn refuses_more_than_25_subrequests() {
        let mut request = CompositeRequest::new(false);
        for i in 0..MAX_SUBREQUESTS {
            request
                .create("CaseComment", json!({"CommentBody": i}), &format!("c{i}"))
                .unwrap();
        }
        let err = request.create("CaseComment", json!({}), "c25").unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert_eq!(request.len(), MAX_SUBREQUESTS);
    }

    #[test]
    fn refuses_bad_reference_ids_methods_and_urls() {
        let mut request = CompositeRequest::new(false);
        for bad in ["", "ref-1", "ref 1", "ref.1", "réf", "@{x}"] {
            assert!(
                request.add(Method::GET, "/limits", bad, None).is_err(),
                "{bad:?}"
            );
        }
        request.add(Method::GET, "limits", "ok_1", None).unwrap();
        assert_eq!(request.subrequests()[0].url, "/limits");
        assert!(request.add(Method::GET, "/limits", "ok_1", None).is_err());
        assert!(request.add(Method::HEAD, "/limits", "h", None).is_err());
        assert!(
            request
                .add(Method::GET, "https://evil.example/x", "u", None)
                .is_err()
        );
        assert!(request.add(Method::GET, "/a b", "w", None).is_err());
        assert!(request.create("Case", json!([1]), "arr").is_err());
        assert!(request.create("Case/..", json!({}), "p").is_err());
        assert!(request.update("Case", "../x", json!({}), "q").is_err());
        request
            .update("Case", "@{refCase.id}", json!({"Status": "Closed"}), "upd")
            .unwrap();
        assert_eq!(request.subrequests()[1].url, "/sobjects/Case/@{refCase.id}");
        assert_eq!(request.len(), 2);
    }

    /// The all-or-none example from the composite documentation, plus PROCESSING_HALTED.
    fn halted_response() -> CompositeResponse {
        serde_json::from_value(json!({"compositeResponse": [
            {"body": [{"errorCode": "PROCESSING_HALTED",
                       "message": "The transaction was rolled back since another operation in the same transaction failed."}],
             "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "refCase"},
            {"body": [{"message": "Email: invalid email address: Not a real email address",
                       "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}],
             "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "badContact"},
            {"body": [{"errorCode": "PROCESSING_HALTED", "message": "rolled back"}],
             "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "refComment"}
        ]}))
        .unwrap()
    }

    #[test]
    fn first_failure_skips_processing_halted() {
        let response = halted_response();
        let err = response.first_failure().unwrap();
        assert_eq!(err.code(), Some("INVALID_EMAIL_ADDRESS"));
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(!response.is_success());
        assert_eq!(
            response.failed_references(),
            vec!["refCase", "badContact", "refComment"]
        );
    }

    #[test]
    fn retryable_subrequest_failures_classify_as_retryable() {
        let response: CompositeResponse = serde_json::from_value(json!({"compositeResponse": [
            {"body": [{"errorCode": "UNABLE_TO_LOCK_ROW",
                       "message": "unable to obtain exclusive access to this record or 1 records: 500Hu000020yLuH"}],
             "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "refCase"},
            {"body": [{"errorCode": "PROCESSING_HALTED", "message": "x"}],
             "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "refComment"}
        ]}))
        .unwrap();
        assert_eq!(
            response.first_failure().unwrap().class(),
            ErrorClass::Retryable
        );
    }

    #[test]
    fn success_and_ids() {
        let response: CompositeResponse = serde_json::from_value(json!({"compositeResponse": [
            {"body": {"id": "500Hu000020yLuHIAU", "success": true, "errors": [], "created": true},
             "httpHeaders": {"Location": "/services/data/v66.0/sobjects/Case/500Hu000020yLuHIAU"},
             "httpStatusCode": 201, "referenceId": "refCase"},
            {"body": null, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "refUpdate"}
        ]}))
        .unwrap();
        assert!(response.first_failure().is_none());
        assert!(response.is_success());
        let case = response.get("refCase").unwrap();
        assert_eq!(case.id().unwrap().as_str(), "500Hu000020yLuHIAU");
        assert!(case.http_headers.contains_key("Location"));
        assert!(response.get("refUpdate").unwrap().id().is_none());
        assert!(response.get("nope").is_none());
    }

    #[test]
    fn only_knock_on_failures_still_report_a_failure() {
        let response: CompositeResponse = serde_json::from_value(json!({"compositeResponse": [
            {"body": [{"errorCode": "PROCESSING_HALTED", "message": "x"}],
             "httpStatusCode": 400, "referenceId": "a"}
        ]}))
        .unwrap();
        assert_eq!(
            response.first_failure().unwrap().code(),
            Some("PROCESSING_HALTED")
        );
    }

    #[test]
    fn nested_collection_and_multiple_match_failures() {
        // Doc "Case 4": a nested collection with one failed record.
        let response: CompositeResponse = serde_json::from_value(json!({"compositeResponse": [
            {"body": [{"id": "001R00000066cndIAA", "success": true, "errors": []},
                      {"success": false, "errors": [{"statusCode": "DUPLICATES_DETECTED", "message": "Use one of these records?", "fields": []}]}],
             "httpHeaders": {}, "httpStatusCode": 200, "referenceId": "collection1"},
            {"body": [{"errorCode": "PROCESSING_HALTED", "message": "x"}],
             "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "newContact"}
        ]}))
        .unwrap();
        assert_eq!(
            response.first_failure().unwrap().code(),
            Some("DUPLICATES_DETECTED")
        );

        let multiple = SubResponse {
            body: json!([
                "/services/data/v66.0/sobjects/Case/a",
                "/services/data/v66.0/sobjects/Case/b"
            ]),
            http_headers: BTreeMap::new(),
            http_status_code: 300,
            reference_id: "refCase".into(),
        };
        let Some(Error::MultipleMatches(urls)) = multiple.error() else {
            panic!()
        };
        assert_eq!(urls.len(), 2);
    }
}
