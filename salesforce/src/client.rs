//! The Salesforce REST client.
//!
//! [`Client`] is cheap to clone and shares one `reqwest::Client`, one [`TokenCache`], one
//! concurrency limit and its counters between clones. [`Client::set_credentials`] swaps the
//! token cache at runtime (e.g. after an admin connects the org in the console); calls already
//! in flight finish with the cache they started with. Every method sends one request
//! (plus, at most once, the same request again after a shared token refresh when
//! Salesforce answers 401). Nothing else is retried: retry policy belongs to the caller,
//! guided by [`Error::class`](crate::Error::class) and
//! [`Error::is_ambiguous`](crate::Error::is_ambiguous).
//!
//! Logging: `tracing` events carry the operation, sObject, status, error code and timing —
//! never bodies, URLs (queries and external Ids can hold customer data), tokens or
//! usernames.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use url::Url;

use crate::auth::{AccessToken, Credentials, TokenCache};
use crate::composite::{CompositeRequest, CompositeResponse};
use crate::error::{ApiError, Error};
use crate::ids::SalesforceId;
use crate::limits::{LIMIT_INFO_HEADER, LimitInfo};
use crate::path;

/// Most records an sObject Collections request accepts.
pub const MAX_COLLECTION_RECORDS: usize = 200;

/// Longest wait for a TCP/TLS connection, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Result<T, E = Error> = std::result::Result<T, E>;

/// How to reach and authenticate to a Salesforce org.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where the token endpoint lives: `https://login.salesforce.com`,
    /// `https://test.salesforce.com` or the My Domain URL (required for client credentials).
    pub login_url: String,
    /// REST API version with its `v`, e.g. `v66.0`.
    pub api_version: String,
    /// How to obtain access tokens.
    pub credentials: Credentials,
    /// Timeout of each HTTP request, from sending to the end of the body.
    pub timeout: Duration,
    /// Most HTTP requests in flight at once, across all clones of the client.
    pub max_concurrency: usize,
}

impl ClientConfig {
    /// A configuration with API `v66.0`, a 30 s timeout and 8 concurrent requests.
    pub fn new(login_url: impl Into<String>, credentials: Credentials) -> Self {
        ClientConfig {
            login_url: login_url.into(),
            api_version: "v66.0".to_owned(),
            credentials,
            timeout: Duration::from_secs(30),
            max_concurrency: 8,
        }
    }
}

/// Result of a create or of one record in an sObject Collections request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveResult {
    /// The record Id. Present on success; failed creates in a collection have none.
    #[serde(default)]
    pub id: Option<SalesforceId>,
    /// Whether the record was saved.
    pub success: bool,
    /// For upserts (v46.0+): whether the record was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    /// Errors when `success` is false (`statusCode` shape).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub errors: Vec<ApiError>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ApiError>, D::Error> {
    Ok(Option::<Vec<ApiError>>::deserialize(d)?.unwrap_or_default())
}

/// Outcome of [`Client::upsert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertResult {
    /// No record had the external Id; one was created (HTTP 201).
    Created {
        /// The new record.
        id: SalesforceId,
    },
    /// One record had the external Id and was updated: HTTP 200 (v46.0+, with the Id) or
    /// HTTP 204 (older versions, no Id).
    Updated {
        /// The updated record, when Salesforce said which.
        id: Option<SalesforceId>,
    },
}

impl UpsertResult {
    /// The record Id, when known.
    pub fn id(&self) -> Option<&SalesforceId> {
        match self {
            UpsertResult::Created { id } => Some(id),
            UpsertResult::Updated { id } => id.as_ref(),
        }
    }

    /// True if the upsert created the record.
    pub fn was_created(&self) -> bool {
        matches!(self, UpsertResult::Created { .. })
    }
}

/// One page of SOQL results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage {
    /// Rows matching the query (all pages).
    pub total_size: u64,
    /// True on the last page.
    pub done: bool,
    /// Path of the next page, when `done` is false.
    #[serde(default)]
    pub next_records_url: Option<String>,
    /// This page's records.
    pub records: Vec<Value>,
}

/// Counters since the client was created (shared by clones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// HTTP requests sent to `/services/data`, including retries after a 401.
    pub api_calls: u64,
    /// Requests sent to the OAuth token endpoint.
    pub token_requests: u64,
}

/// A Salesforce REST client. Clone it freely.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    api_version: String,
    login_url: String,
    /// The current token cache; replaced whole by [`Client::set_credentials`].
    tokens: RwLock<Arc<TokenCache>>,
    /// Token requests sent by caches that were replaced.
    retired_token_requests: AtomicU64,
    permits: Semaphore,
    api_calls: AtomicU64,
    limit_info: Mutex<Option<LimitInfo>>,
    /// The instance URL of the last access token a request used.
    instance_url: Mutex<Option<Url>>,
}

/// What a request is for, for logging.
#[derive(Clone, Copy)]
struct Op<'a> {
    name: &'static str,
    sobject: Option<&'a str>,
}

impl<'a> Op<'a> {
    fn new(name: &'static str, sobject: Option<&'a str>) -> Self {
        Op { name, sobject }
    }
}

/// Where a request goes.
enum Target<'a> {
    /// A path under `/services/data/{version}`.
    Versioned(&'a str),
    /// A full `/services/data/…` path or a URL on the instance (e.g. `nextRecordsUrl`).
    Given(&'a str),
}

/// One request to send.
struct Call<'a> {
    op: Op<'a>,
    method: Method,
    target: Target<'a>,
    query: &'a [(&'a str, &'a str)],
    headers: Vec<(&'static str, String)>,
    body: Option<&'a Value>,
}

impl<'a> Call<'a> {
    fn new(op: Op<'a>, method: Method, target: Target<'a>) -> Self {
        Call {
            op,
            method,
            target,
            query: &[],
            headers: Vec::new(),
            body: None,
        }
    }

    fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn body(mut self, body: &'a Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// A raw answer.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Client {
    /// Builds a client. Checks the configuration and credentials (a JWT key must parse)
    /// but sends nothing; the first call fetches a token.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let version_ok = config
            .api_version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(major, minor)| {
                !major.is_empty()
                    && !minor.is_empty()
                    && major.bytes().all(|b| b.is_ascii_digit())
                    && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if !version_ok {
            return Err(Error::Invalid(format!(
                "api_version must look like v66.0, got {:?}",
                config.api_version
            )));
        }
        if config.max_concurrency == 0 {
            return Err(Error::Invalid(
                "max_concurrency must be at least 1".to_owned(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(Error::Invalid("timeout must be positive".to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(MAX_CONNECT_TIMEOUT))
            .timeout(config.timeout)
            // A redirect would be unexpected, and must not carry the bearer token anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("handoff-salesforce/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("could not build the HTTP client: {e}")))?;
        let tokens = TokenCache::new(http.clone(), &config.login_url, &config.credentials)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                api_version: config.api_version,
                login_url: config.login_url,
                tokens: RwLock::new(Arc::new(tokens)),
                retired_token_requests: AtomicU64::new(0),
                permits: Semaphore::new(config.max_concurrency),
                api_calls: AtomicU64::new(0),
                limit_info: Mutex::new(None),
                instance_url: Mutex::new(None),
            }),
        })
    }

    /// Obtains a token now (if none is cached), to check credentials at startup.
    pub async fn authenticate(&self) -> Result<()> {
        self.tokens().token().await.map(|_| ())
    }

    /// Switches to other credentials against the configured login URL; see
    /// [`Client::set_credentials_at`].
    pub fn set_credentials(&self, credentials: &Credentials) -> Result<()> {
        let login_url = self.inner.login_url.clone();
        self.set_credentials_at(&login_url, credentials)
    }

    /// Switches every clone of this client to `credentials`, whose tokens come from
    /// `{login_url}/services/oauth2/token`. The cached token is dropped: the next call
    /// obtains one with the new credentials. Calls in flight finish with the old token (and
    /// refresh, if they must, with the old credentials). Nothing is sent here; bad
    /// credentials (a JWT key that does not parse, a bad URL) are refused and change nothing.
    pub fn set_credentials_at(&self, login_url: &str, credentials: &Credentials) -> Result<()> {
        let fresh = Arc::new(TokenCache::new(
            self.inner.http.clone(),
            login_url,
            credentials,
        )?);
        let old = std::mem::replace(
            &mut *self
                .inner
                .tokens
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            fresh,
        );
        self.inner
            .retired_token_requests
            .fetch_add(old.token_requests(), Ordering::Relaxed);
        tracing::info!(
            grant = credentials.kind(),
            "salesforce credentials switched"
        );
        Ok(())
    }

    /// The token cache in use now.
    fn tokens(&self) -> Arc<TokenCache> {
        Arc::clone(
            &self
                .inner
                .tokens
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The API version in use, e.g. `v66.0`.
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// The last `Sforce-Limit-Info` Salesforce sent, if any.
    pub fn limit_info(&self) -> Option<LimitInfo> {
        self.inner
            .limit_info
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The org's instance URL (from the last access token a request used), e.g.
    /// `https://acme.my.salesforce.com/`; `None` before the first request.
    pub fn instance_url(&self) -> Option<Url> {
        self.inner
            .instance_url
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Request counters.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            api_calls: self.inner.api_calls.load(Ordering::Relaxed),
            token_requests: self.inner.retired_token_requests.load(Ordering::Relaxed)
                + self.tokens().token_requests(),
        }
    }

    /// `POST /sobjects/{sobject}`: creates a record (HTTP 201).
    pub async fn create(&self, sobject: &str, record: &Value) -> Result<SaveResult> {
        path::record_body(record)?;
        let path = path::sobject(sobject)?;
        let op = Op::new("create", Some(sobject));
        let reply = self
            .send(Call::new(op, Method::POST, Target::Versioned(&path)).body(record))
            .await?;
        let result: SaveResult = decode(&ok(op, reply)?)?;
        if result.id.is_none() || !result.success {
            return Err(Error::Decode(
                "create succeeded without a record id".to_owned(),
            ));
        }
        Ok(result)
    }

    /// `GET /sobjects/{sobject}/{id}[?fields=…]`: reads a record.
    pub async fn get(
        &self,
        sobject: &str,
        id: &SalesforceId,
        fields: Option<&[&str]>,
    ) -> Result<Value> {
        let path = format!("{}/{}", path::sobject(sobject)?, id.as_str());
        let fields = fields
            .filter(|fields| !fields.is_empty())
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| path::api_name("field name", f))
                    .collect::<Result<Vec<_>>>()
                    .map(|names| names.join(","))
            })
            .transpose()?;
        let query: Vec<(&str, &str)> = fields.iter().map(|f| ("fields", f.as_str())).collect();
        let op = Op::new("get", Some(sobject));
        let reply = self
            .send(Call::new(op, Method::GET, Target::Versioned(&path)).query(&query))
            .await?;
        decode(&ok(op, reply)?)
    }

    /// `GET /sobjects/{sobject}/describe`: the object's metadata (fields with their
    /// `type`, `length`, `externalId`, `unique`, `caseSensitive`, `createable`, …).
    pub async fn describe(&self, sobject: &str) -> Result<Value> {
        let path = format!("{}/describe", path::sobject(sobject)?);
        let op = Op::new("describe", Some(sobject));
        let reply = self
            .send(Call::new(op, Method::GET, Target::Versioned(&path)))
            .await?;
        decode(&ok(op, reply)?)
    }

    /// The identity of the current token: `(org id, user id)` from its identity URL
    /// (`…/id/<OrgId>/<UserId>`), obtaining a token first if needed. `None` when the
    /// token endpoint sent no identity URL.
    pub async fn identity(&self) -> Result<Option<(String, String)>> {
        let token = self.tokens().token().await?;
        Ok(token.identity_url.as_deref().and_then(|url| {
            let mut parts = url.trim_end_matches('/').rsplit('/');
            let user = parts.next()?.to_string();
            let org = parts.next()?.to_string();
            (parts.next() == Some("id")).then_some((org, user))
        }))
    }

    /// `PATCH /sobjects/{sobject}/{id}`: updates the given fields (HTTP 204).
    pub async fn update(&self, sobject: &str, id: &SalesforceId, fields: &Value) -> Result<()> {
        path::record_body(fields)?;
        let path = format!("{}/{}", path::sobject(sobject)?, id.as_str());
        let op = Op::new("update", Some(sobject));
        let reply = self
            .send(Call::new(op, Method::PATCH, Target::Versioned(&path)).body(fields))
            .await?;
        ok(op, reply).map(|_| ())
    }

    /// `PATCH /sobjects/{sobject}/{ext_field}/{ext_value}`: creates or updates the record
    /// with this external Id. The value is path-escaped; the external-Id field is removed
    /// from the body (Salesforce wants it only in the path).
    ///
    /// 201 → [`UpsertResult::Created`]; 200 with `created:false` or 204 →
    /// [`UpsertResult::Updated`]; 300 → [`Error::MultipleMatches`].
    pub async fn upsert(
        &self,
        sobject: &str,
        ext_field: &str,
        ext_value: &str,
        record: &Value,
    ) -> Result<UpsertResult> {
        let path = path::external_id(sobject, ext_field, ext_value)?;
        let body = path::upsert_body(ext_field, record)?;
        let op = Op::new("upsert", Some(sobject));
        let reply = self
            .send(Call::new(op, Method::PATCH, Target::Versioned(&path)).body(&body))
            .await?;
        match reply.status.as_u16() {
            300 => {
                let urls: Vec<String> = serde_json::from_slice(&reply.body).map_err(|_| {
                    Error::Decode("HTTP 300 without a list of record URLs".to_owned())
                })?;
                Err(Error::MultipleMatches(urls))
            }
            204 => Ok(UpsertResult::Updated { id: None }),
            status => {
                let reply = ok(op, reply)?;
                let result: SaveResult = decode(&reply)?;
                let id = result.id.ok_or_else(|| {
                    Error::Decode("upsert succeeded without a record id".to_owned())
                })?;
                if status == 201 || result.created == Some(true) {
                    Ok(UpsertResult::Created { id })
                } else {
                    Ok(UpsertResult::Updated { id: Some(id) })
                }
            }
        }
    }

    /// `GET /query?q=…`: the first page of a SOQL query. Build literals with
    /// [`crate::soql::quote`].
    pub async fn query(&self, soql: &str) -> Result<QueryPage> {
        let op = Op::new("query", None);
        let reply = self
            .send(Call::new(op, Method::GET, Target::Versioned("/query")).query(&[("q", soql)]))
            .await?;
        decode(&ok(op, reply)?)
    }

    /// Like [`Client::query`], asking for pages of `batch_size` records with
    /// `Sforce-Query-Options: batchSize=N` (Salesforce accepts 200 to 2000 and treats the
    /// size as a hint).
    pub async fn query_with_batch_size(&self, soql: &str, batch_size: u16) -> Result<QueryPage> {
        let op = Op::new("query", None);
        let reply = self
            .send(
                Call::new(op, Method::GET, Target::Versioned("/query"))
                    .query(&[("q", soql)])
                    .header("Sforce-Query-Options", format!("batchSize={batch_size}")),
            )
            .await?;
        decode(&ok(op, reply)?)
    }

    /// `GET {nextRecordsUrl}`: the next page of a query. Accepts the path Salesforce sends
    /// (`/services/data/vXX.X/query/01g…-2000`) or a full URL on the same instance.
    pub async fn query_more(&self, next_records_url: &str) -> Result<QueryPage> {
        let op = Op::new("query_more", None);
        let reply = self
            .send(Call::new(op, Method::GET, Target::Given(next_records_url)))
            .await?;
        decode(&ok(op, reply)?)
    }

    /// Runs a query and follows `nextRecordsUrl` to the end, returning every record.
    pub async fn query_all_pages(&self, soql: &str) -> Result<Vec<Value>> {
        let mut page = self.query(soql).await?;
        let mut records = std::mem::take(&mut page.records);
        let mut seen = std::collections::HashSet::new();
        while !page.done {
            let next = page.next_records_url.take().ok_or_else(|| {
                Error::Decode("query page has done:false but no nextRecordsUrl".to_owned())
            })?;
            if !seen.insert(next.clone()) {
                return Err(Error::Decode(
                    "query paging returned the same nextRecordsUrl twice".to_owned(),
                ));
            }
            page = self.query_more(&next).await?;
            records.append(&mut page.records);
        }
        Ok(records)
    }

    /// `POST /composite`: runs the subrequests in one call. HTTP 200 is returned even when
    /// subrequests fail: check [`CompositeResponse::first_failure`].
    pub async fn composite(&self, request: &CompositeRequest) -> Result<CompositeResponse> {
        if request.is_empty() {
            return Err(Error::Invalid(
                "a composite request needs at least one subrequest".to_owned(),
            ));
        }
        let body = request.to_json(&self.inner.api_version);
        let op = Op::new("composite", None);
        let reply = self
            .send(Call::new(op, Method::POST, Target::Versioned("/composite")).body(&body))
            .await?;
        let response: CompositeResponse = decode(&ok(op, reply)?)?;
        if response.composite_response.len() != request.len() {
            return Err(Error::Decode(format!(
                "composite answered {} subresponses for {} subrequests",
                response.composite_response.len(),
                request.len()
            )));
        }
        if let Some(err) = response.first_failure() {
            tracing::debug!(
                op = op.name,
                status = err.status(),
                error_code = err.code(),
                "salesforce composite subrequest failed"
            );
        }
        Ok(response)
    }

    /// `POST /composite/sobjects`: creates up to 200 records in one call. Each record needs
    /// `attributes.type`. Results are in input order; with `all_or_none` false, some may
    /// have failed (`success:false`) while others were created.
    pub async fn collections_create(
        &self,
        records: Vec<Value>,
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>> {
        if records.is_empty() || records.len() > MAX_COLLECTION_RECORDS {
            return Err(Error::Invalid(format!(
                "sObject Collections create takes 1 to {MAX_COLLECTION_RECORDS} records, got {}",
                records.len()
            )));
        }
        for (i, record) in records.iter().enumerate() {
            let object = path::record_body(record)?;
            let typed = object
                .get("attributes")
                .and_then(|a| a.get("type"))
                .and_then(Value::as_str)
                .is_some_and(|t| path::api_name("attributes.type", t).is_ok());
            if !typed {
                return Err(Error::Invalid(format!(
                    "record {i} needs attributes.type naming its sObject"
                )));
            }
            if object.keys().any(|k| k.eq_ignore_ascii_case("id")) {
                return Err(Error::Invalid(format!(
                    "record {i} must not set Id in a create"
                )));
            }
        }
        let count = records.len();
        let body = json!({"allOrNone": all_or_none, "records": records});
        let op = Op::new("collections_create", None);
        let reply = self
            .send(Call::new(op, Method::POST, Target::Versioned("/composite/sobjects")).body(&body))
            .await?;
        let results: Vec<SaveResult> = decode(&ok(op, reply)?)?;
        if results.len() != count {
            return Err(Error::Decode(format!(
                "collections create answered {} results for {count} records",
                results.len()
            )));
        }
        Ok(results)
    }

    /// `POST /actions/custom/flow/{name}` with `{"inputs": […]}`: runs an autolaunched
    /// Flow once per input and returns one result per input. Salesforce answers 400 for
    /// the whole request if any input fails; that becomes [`Error::Api`] with the errors of
    /// the failed elements.
    pub async fn invoke_flow(&self, name: &str, inputs: Vec<Value>) -> Result<Vec<Value>> {
        if inputs.is_empty() {
            return Err(Error::Invalid(
                "a flow invocation needs at least one input".to_owned(),
            ));
        }
        let path = format!(
            "/actions/custom/flow/{}",
            path::api_name("flow name", name)?
        );
        let body = json!({ "inputs": inputs });
        let op = Op::new("invoke_flow", None);
        let reply = self
            .send(Call::new(op, Method::POST, Target::Versioned(&path)).body(&body))
            .await?;
        decode(&ok(op, reply)?)
    }

    /// Sends one request, and once more with a new token if Salesforce answers 401.
    async fn send(&self, call: Call<'_>) -> Result<Reply> {
        let payload = call
            .body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Invalid(format!("request body is not serializable: {e}")))?;
        let tokens = self.tokens();
        let mut token = tokens.token().await?;
        let mut refreshed = false;
        loop {
            let url = self.url_for(&token, &call.target)?;
            self.remember_instance(&token);
            let reply = self
                .send_once(&call, url, &token, payload.as_deref())
                .await?;
            if reply.status == StatusCode::UNAUTHORIZED && !refreshed {
                tracing::info!(
                    op = call.op.name,
                    sobject = call.op.sobject,
                    generation = token.generation,
                    "salesforce rejected the access token; refreshing once"
                );
                token = tokens.refresh(token.generation).await?;
                refreshed = true;
                continue;
            }
            return Ok(reply);
        }
    }

    async fn send_once(
        &self,
        call: &Call<'_>,
        url: Url,
        token: &AccessToken,
        payload: Option<&[u8]>,
    ) -> Result<Reply> {
        let op = call.op;
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Invalid("client is shut down".to_owned()))?;
        let started = Instant::now();
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .bearer_auth(token.secret().expose_secret())
            .header(ACCEPT, "application/json");
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(payload) = payload {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(payload.to_vec());
        }
        self.inner.api_calls.fetch_add(1, Ordering::Relaxed);
        let outcome = async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .await;
        let elapsed = started.elapsed();
        crate::metrics::record(
            op.name,
            elapsed,
            match &outcome {
                Ok((status, _, _)) => crate::metrics::Outcome::Answered(status.as_u16()),
                Err(_) => crate::metrics::Outcome::Transport,
            },
        );
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let (status, headers, body) = outcome.map_err(|e| {
            let err = Error::transport(&e);
            tracing::warn!(
                op = op.name,
                sobject = op.sobject,
                elapsed_ms,
                ambiguous = err.is_ambiguous(),
                "salesforce request failed in transport"
            );
            err
        })?;
        self.record_limits(&headers);
        tracing::debug!(
            op = op.name,
            sobject = op.sobject,
            status = status.as_u16(),
            elapsed_ms,
            "salesforce request"
        );
        Ok(Reply {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    /// Resolves a target against the token's instance URL. Given URLs must be
    /// `/services/data/…` paths or URLs on the same origin: the bearer token never goes
    /// anywhere else.
    fn url_for(&self, token: &AccessToken, target: &Target<'_>) -> Result<Url> {
        let base = token.instance_url.as_str().trim_end_matches('/');
        let path = match target {
            Target::Versioned(rest) => format!("/services/data/{}{rest}", self.inner.api_version),
            Target::Given(given) if given.starts_with("/services/data/") => (*given).to_owned(),
            Target::Given(given) => {
                let url = Url::parse(given).map_err(|_| {
                    Error::Invalid("nextRecordsUrl is neither a path nor a URL".to_owned())
                })?;
                if url.origin() != token.instance_url.origin()
                    || !url.path().starts_with("/services/data/")
                {
                    return Err(Error::Invalid(
                        "nextRecordsUrl points outside this Salesforce instance's data API"
                            .to_owned(),
                    ));
                }
                match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_owned(),
                }
            }
        };
        if path.contains("/../") || path.contains("/./") || path.ends_with("/..") {
            return Err(Error::Invalid(
                "request path contains dot segments".to_owned(),
            ));
        }
        Url::parse(&format!("{base}{path}"))
            .map_err(|_| Error::Invalid("could not build the request URL".to_owned()))
    }

    fn remember_instance(&self, token: &AccessToken) {
        let mut known = self
            .inner
            .instance_url
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if known.as_ref() != Some(&token.instance_url) {
            *known = Some(token.instance_url.clone());
        }
    }

    fn record_limits(&self, headers: &HeaderMap) {
        let Some(info) = headers
            .get(LIMIT_INFO_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(LimitInfo::parse)
            .filter(|info| !info.is_empty())
        else {
            return;
        };
        *self
            .inner
            .limit_info
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(info);
    }
}

/// Passes a 2xx reply through; turns anything else into [`Error::Api`] and logs its code.
fn ok(op: Op<'_>, reply: Reply) -> Result<Reply> {
    if reply.status.is_success() {
        return Ok(reply);
    }
    let err = Error::from_response(reply.status.as_u16(), &reply.headers, &reply.body);
    tracing::warn!(
        op = op.name,
        sobject = op.sobject,
        status = reply.status.as_u16(),
        error_code = err.code(),
        class = ?err.class(),
        "salesforce request failed"
    );
    Err(err)
}

/// Decodes a JSON body, describing failures without quoting values.
fn decode<T: DeserializeOwned>(reply: &Reply) -> Result<T> {
    serde_json::from_slice(&reply.body).map_err(|e| {
        let detail = e.to_string();
        let shown = if detail.starts_with("missing field") || detail.starts_with("unknown variant")
        {
            detail
        } else {
            format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            )
        };
        Error::Decode(format!("HTTP {} body: {shown}", reply.status.as_u16()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        ClientConfig::new(
            "https://login.salesforce.com",
            Credentials::ClientCredentials {
                client_id: "c".into(),
                client_secret: "s".into(),
            },
        )
    }

    fn token(instance: &str) -> AccessToken {
        let body = format!(r#"{{"access_token":"t","instance_url":"{instance}"}}"#);
        crate::auth::parse_token_response(body.as_bytes(), 1)
            .unwrap()
            .0
    }

    #[test]
    fn config_is_checked() {
        assert!(Client::new(config()).is_ok());
        for version in ["66.0", "v66", "v66.", "vx.0", ""] {
            let mut c = config();
            c.api_version = version.into();
            assert!(
                matches!(Client::new(c), Err(Error::Invalid(_))),
                "{version}"
            );
        }
        let mut c = config();
        c.max_concurrency = 0;
        assert!(Client::new(c).is_err());
        let mut c = config();
        c.login_url = "not a url".into();
        assert!(Client::new(c).is_err());
    }

    #[test]
    fn urls_stay_on_the_instance() {
        let client = Client::new(config()).unwrap();
        let t = token("https://acme.my.salesforce.com");
        assert_eq!(
            client
                .url_for(&t, &Target::Versioned("/sobjects/Case"))
                .unwrap()
                .as_str(),
            "https://acme.my.salesforce.com/services/data/v66.0/sobjects/Case"
        );
        assert_eq!(
            client
                .url_for(
                    &t,
                    &Target::Given("/services/data/v66.0/query/01gD0000002HU6KIAW-2000")
                )
                .unwrap()
                .as_str(),
            "https://acme.my.salesforce.com/services/data/v66.0/query/01gD0000002HU6KIAW-2000"
        );
        assert!(
            client
                .url_for(
                    &t,
                    &Target::Given("https://acme.my.salesforce.com/services/data/v66.0/query/x-2")
                )
                .is_ok()
        );
        for bad in [
            "https://evil.example/services/data/v66.0/query/x",
            "http://acme.my.salesforce.com/services/data/v66.0/query/x",
            "https://acme.my.salesforce.com/other",
            "/services/data/v66.0/../../secret",
            "query/next",
        ] {
            assert!(client.url_for(&t, &Target::Given(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn save_results_accept_both_id_forms_and_null_errors() {
        let ok: SaveResult =
            serde_json::from_str(r#"{"id":"001D000000IqhSLIAZ","errors":[],"success":true}"#)
                .unwrap();
        assert_eq!(ok.id.unwrap().as_str(), "001D000000IqhSLIAZ");
        let failed: Vec<SaveResult> = serde_json::from_str(
            r#"[{"success":false,"errors":[{"statusCode":"MALFORMED_ID","message":"m","fields":["Id"]}]},
                {"id":null,"success":false,"errors":null}]"#,
        )
        .unwrap();
        assert!(failed[0].id.is_none());
        assert_eq!(failed[0].errors[0].error_code, "MALFORMED_ID");
        assert!(failed[1].errors.is_empty());
    }

    #[test]
    fn query_pages_decode() {
        let page: QueryPage = serde_json::from_str(
            r#"{"totalSize":2,"done":false,"nextRecordsUrl":"/services/data/v26.0/query/01gD","records":[{"attributes":{"type":"Whizbang"},"Text_Label":"First Page"}]}"#,
        )
        .unwrap();
        assert!(!page.done);
        assert_eq!(
            page.next_records_url.as_deref(),
            Some("/services/data/v26.0/query/01gD")
        );
        let empty: QueryPage =
            serde_json::from_str(r#"{"totalSize":0,"done":true,"records":[]}"#).unwrap();
        assert!(empty.next_records_url.is_none());
    }

    #[test]
    fn upsert_result_accessors() {
        let id = SalesforceId::parse("500Hu000020yLuH").unwrap();
        assert!(UpsertResult::Created { id: id.clone() }.was_created());
        assert_eq!(
            UpsertResult::Updated {
                id: Some(id.clone())
            }
            .id(),
            Some(&id)
        );
        assert_eq!(UpsertResult::Updated { id: None }.id(), None);
    }

    #[test]
    fn decode_errors_do_not_quote_values() {
        let reply = Reply {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: br#"{"totalSize":"ann@example.com","done":true,"records":[]}"#.to_vec(),
        };
        let err = decode::<QueryPage>(&reply).unwrap_err();
        assert!(!err.to_string().contains("ann@example.com"), "{err}");
    }
}
