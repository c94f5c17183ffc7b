#![forbid(unsafe_code)]
//! Salesforce client used by Handoff: OAuth 2.0 (JWT bearer, client credentials,
//! password, refresh token) with a shared single-flight token cache, the REST data API
//! (records, upsert by external Id, SOQL with paging, Composite, sObject Collections,
//! invocable Flows), SOQL literal escaping, record Ids and `Sforce-Limit-Info` parsing.
//!
//! The client never retries on its own except once after a token refresh on HTTP 401;
//! [`Error::class`] and [`Error::is_ambiguous`] tell the caller what to do with a failure.
//!
//! ```no_run
//! # async fn demo() -> Result<(), salesforce::Error> {
//! use salesforce::{Client, ClientConfig, Credentials, soql};
//! let client = Client::new(ClientConfig::new(
//!     "https://acme.my.salesforce.com",
//!     Credentials::ClientCredentials {
//!         client_id: "consumer-key".into(),
//!         client_secret: "consumer-secret".into(),
//!     },
//! ))?;
//! let soql = format!(
//!     "SELECT Id, Status FROM Case WHERE CaseNumber = {} LIMIT 1",
//!     soql::quote("00001026")?
//! );
//! let page = client.query(&soql).await?;
//! # let _ = page;
//! # Ok(())
//! # }
//! ```

pub mod auth;
pub mod client;
pub mod composite;
pub mod error;
pub mod events;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod miaw;
mod path;
pub mod soql;
pub mod web_flow;

pub use auth::{AccessToken, Credentials, NOT_CONNECTED, TokenCache};
pub use client::{
    Client, ClientConfig, ClientStats, MAX_COLLECTION_RECORDS, QueryPage, SaveResult, UpsertResult,
};
pub use composite::{
    CompositeRequest, CompositeResponse, MAX_SUBREQUESTS, SubRequest, SubResponse,
};
pub use error::{ApiError, Error, ErrorClass};
pub use ids::{IdError, SalesforceId};
pub use limits::LimitInfo;
pub use reqwest::Method;
pub use soql::SoqlError;
pub use web_flow::{Authorize, UserAccess, UserInfo, WebFlow, WebTokens};
