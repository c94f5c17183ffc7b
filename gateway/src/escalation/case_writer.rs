//! Writes one escalation to Salesforce as a Case with its transcript comments,
//! idempotently: the Case is an upsert on the external-id field, and a retry
//! first reads what an earlier attempt already wrote, then writes only the rest.

use std::collections::HashSet;

use serde_json::{Value, json};

use salesforce::{Client, CompositeRequest, Error as SfError, Method, SalesforceId, soql};

use super::mapper;
use crate::jobs::fence::{Fence, Fenced};

/// Composite allows 25 subrequests: the Case upsert, the CaseNumber read-back,
/// and up to 23 comments go in the first call.
pub const FIRST_CALL_COMMENTS: usize = 23;
/// sObject Collections take up to 200 records per call.
pub const COLLECTION_BATCH: usize = 200;

/// What a successful write produced.
#[derive(Debug, Clone)]
pub struct CaseWritten {
    pub case_id: SalesforceId,
    pub case_number: Option<String>,
    /// Comments that make up the transcript (all of them now exist).
    pub comments_total: usize,
    /// Comments this attempt wrote (less than the total after a partial earlier attempt).
    pub comments_written_now: usize,
    /// Salesforce API calls this attempt made.
    pub calls: u64,
    /// Whether an earlier attempt had already created the Case.
    pub reconciled: bool,
}

/// A failed attempt: the error and the calls it spent.
#[derive(Debug)]
pub struct WriteFailed {
    pub error: WriteError,
    pub calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Salesforce(#[from] SfError),
    /// The job's lease is not certainly ours: stopped before the next call.
    #[error("stopped before the next Salesforce call: {0}")]
    Fenced(#[from] Fenced),
}

pub struct CaseWriter<'a> {
    pub client: &'a Client,
    pub external_id_field: &'a str,
    /// Checked before every Salesforce call.
    pub fence: &'a Fence,
}

impl CaseWriter<'_> {
    /// Writes the Case and comments. `reconcile` is set on every attempt after the
    /// first: an earlier one may have committed even though we never heard back.
    pub async fn write(
        &self,
        session_id: &str,
        case_fields: &serde_json::Map<String, Value>,
        comments: &[String],
        reconcile: bool,
    ) -> Result<CaseWritten, WriteFailed> {
        let mut calls = 0u64;
        let result = self
            .write_inner(session_id, case_fields, comments, reconcile, &mut calls)
            .await;
        result.map_err(|error| WriteFailed { error, calls })
    }

    async fn write_inner(
        &self,
        session_id: &str,
        case_fields: &serde_json::Map<String, Value>,
        comments: &[String],
        reconcile: bool,
        calls: &mut u64,
    ) -> Result<CaseWritten, WriteError> {
        if reconcile && let Some(existing) = self.find_existing(session_id, calls).await? {
            let (case_id, case_number, have) = existing;
            let missing: Vec<&String> = comments
                .iter()
                .enumerate()
                .filter(|(i, _)| !have.contains(&(i + 1)))
                .map(|(_, c)| c)
                .collect();
            let written_now = missing.len();
            self.insert_comments(&case_id, &missing, calls).await?;
            return Ok(CaseWritten {
                case_id,
                case_number,
                comments_total: comments.len(),
                comments_written_now: written_now,
                calls: *calls,
                reconciled: true,
            });
        }

        let first = comments.len().min(FIRST_CALL_COMMENTS);
        let mut request = CompositeRequest::new(true);
        request.upsert(
            "Case",
            self.external_id_field,
            session_id,
            Value::Object(case_fields.clone()),
            "newCase",
        )?;
        request.add(
            Method::GET,
            "sobjects/Case/@{newCase.id}?fields=CaseNumber",
            "caseInfo",
            None,
        )?;
        for (i, body) in comments[..first].iter().enumerate() {
            request.create(
                "CaseComment",
                comment_fields("@{newCase.id}", body),
                &format!("comment{}", i + 1),
            )?;
        }
        self.fence.check()?;
        *calls += 1;
        let response = self.client.composite(&request).await?;
        if let Some(error) = response.first_failure() {
            return Err(error.into());
        }
        let case_id = response
            .get("newCase")
            .and_then(|r| r.id())
            .ok_or_else(|| SfError::Decode("composite response lacks the Case id".into()))?;
        let case_number = response
            .get("caseInfo")
            .and_then(|r| r.body.get("CaseNumber"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let rest: Vec<&String> = comments[first..].iter().collect();
        self.insert_comments(&case_id, &rest, calls).await?;
        Ok(CaseWritten {
            case_id,
            case_number,
            comments_total: comments.len(),
            comments_written_now: comments.len(),
            calls: *calls,
            reconciled: false,
        })
    }

    /// The Case an earlier attempt created, its CaseNumber, and which transcript
    /// parts (1-based) it already holds.
    async fn find_existing(
        &self,
        session_id: &str,
        calls: &mut u64,
    ) -> Result<Option<(SalesforceId, Option<String>, HashSet<usize>)>, WriteError> {
        let literal = soql::quote(session_id).map_err(|e| SfError::Invalid(e.to_string()))?;
        let query = format!(
            "SELECT Id, CaseNumber FROM Case WHERE {} = {literal} LIMIT 1",
            self.external_id_field
        );
        self.fence.check()?;
        *calls += 1;
        let page = self.client.query(&query).await?;
        let Some(record) = page.records.first() else {
            return Ok(None);
        };
        let case_id = record
            .get("Id")
            .and_then(Value::as_str)
            .and_then(|id| SalesforceId::parse(id).ok())
            .ok_or_else(|| SfError::Decode("query result lacks the Case Id".into()))?;
        let case_number = record
            .get("CaseNumber")
            .and_then(Value::as_str)
            .map(str::to_string);

        let query = format!(
            "SELECT Id, CommentBody FROM CaseComment WHERE ParentId = '{}' ORDER BY CreatedDate",
            case_id.as_str()
        );
        self.fence.check()?;
        *calls += 1;
        let mut have = HashSet::new();
        let mut page = self.client.query(&query).await?;
        loop {
            for comment in &page.records {
                if let Some((index, _total)) = comment
                    .get("CommentBody")
                    .and_then(Value::as_str)
                    .and_then(mapper::parse_comment_header)
                {
                    have.insert(index);
                }
            }
            match page.next_records_url.clone() {
                Some(next) if !page.done => {
                    self.fence.check()?;
                    *calls += 1;
                    page = self.client.query_more(&next).await?;
                }
                _ => break,
            }
        }
        Ok(Some((case_id, case_number, have)))
    }

    async fn insert_comments(
        &self,
        case_id: &SalesforceId,
        bodies: &[&String],
        calls: &mut u64,
    ) -> Result<(), WriteError> {
        for batch in bodies.chunks(COLLECTION_BATCH) {
            let records: Vec<Value> = batch
                .iter()
                .map(|body| {
                    let mut record = comment_fields(case_id.as_str(), body);
                    record["attributes"] = json!({"type": "CaseComment"});
                    record
                })
                .collect();
            self.fence.check()?;
            *calls += 1;
            let results = self.client.collections_create(records, true).await?;
            if let Some(failed) = results.iter().find(|r| !r.success) {
                return Err(SfError::Api {
                    status: 400,
                    errors: failed.errors.clone(),
                    retry_after: None,
                }
                .into());
            }
        }
        Ok(())
    }
}

/// An internal (unpublished) CaseComment on `parent` (an id, or a composite
/// reference to the Case created earlier in the same request).
fn comment_fields(parent: &str, body: &str) -> Value {
    json!({
        "ParentId": parent,
        "CommentBody": body,
        "IsPublished": false,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::jobs::clock::Clock;

    /// A clock that moves one second each time it is read: the fence's first
    /// check happens at the start, the second one second later.
    #[derive(Debug)]
    struct SteppingClock {
        start: Instant,
        reads: AtomicU64,
    }

    impl Clock for SteppingClock {
        fn now(&self) -> Instant {
            self.start + Duration::from_secs(self.reads.fetch_add(1, Ordering::SeqCst))
        }
    }

    /// Lease renewals used to stop an attempt only when they found the lease
    /// gone; when they *errored* (the database unreachable), the attempt kept
    /// calling Salesforce past its lease while another replica could take the
    /// job, so transcript comments could be written twice. The writer now checks
    /// the fence before every call: with the lease running out after the first
    /// call, the Case and its first 23 comments are written and the sObject
    /// Collections call for the remaining 7 is never made.
    #[tokio::test]
    async fn a_lapsed_lease_stops_the_write_before_its_next_call() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let emulator = sf_emulator::spawn(sf_emulator::EmulatorConfig::default(), listener)
            .await
            .unwrap();
        let app = emulator.config().connected_apps[0].clone();
        let client = Client::new(salesforce::ClientConfig {
            login_url: emulator.url(),
            api_version: "v66.0".into(),
            credentials: salesforce::Credentials::ClientCredentials {
                client_id: app.client_id,
                client_secret: app.client_secret.into(),
            },
            timeout: Duration::from_secs(10),
            max_concurrency: 2,
        })
        .unwrap();
        let start = Instant::now();
        let clock = Arc::new(SteppingClock {
            start,
            reads: AtomicU64::new(0),
        });
        let fence = Fence::new(clock, start, Duration::from_millis(500));
        let writer = CaseWriter {
            client: &client,
            external_id_field: "Handoff_Session_Id__c",
            fence: &fence,
        };
        let mut fields = serde_json::Map::new();
        fields.insert("Subject".into(), json!("fenced"));
        let comments: Vec<String> = (1..=30).map(|k| format!("Transcript {k}/30\n…")).collect();
        let failed = writer
            .write("fence-1", &fields, &comments, false)
            .await
            .expect_err("the lease lapsed after the first call");
        assert!(
            matches!(failed.error, WriteError::Fenced(Fenced::Expired)),
            "{:?}",
            failed.error
        );
        assert_eq!(failed.calls, 1);
        assert_eq!(emulator.records("Case").len(), 1);
        assert_eq!(emulator.records("CaseComment").len(), FIRST_CALL_COMMENTS);
        emulator.shutdown().await;
    }
}
