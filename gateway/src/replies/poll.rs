//! The `poll_case_replies` job (contract §4): for orgs that cannot deploy the trigger, one
//! SOQL query per interval across every open escalated Case, with child sub-queries for the
//! public CaseComments and outbound EmailMessages changed since the watermark (less
//! `poll_overlap_secs`), paged with queryMore. Every record found is recorded as a
//! `salesforce_events` row (source `poll`) with its `sync_case_event` job — an id already
//! recorded, pushed or polled, writes nothing — and the watermark advances to the newest
//! `SystemModstamp` seen, in one transaction with the job's rescheduling.
//!
//! One job exists per deployment (`session_id` `_poller`, created at startup by
//! [`crate::store::Store::ensure_poller_job`]); with several replicas only the holder of its
//! lease polls. A replica with `case_replies.poll` off that claims it only puts it back for
//! the next interval (a replica with polling on shares the database). It is a Salesforce job: the circuit breaker holds it while Salesforce is
//! down or rate-limiting.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use salesforce::events::{Author, CaseEvent, EventBody, EventKind, parse_datetime};
use salesforce::{Client, SalesforceId, soql};

use crate::config::CaseConfig;
use crate::escalation::gate::CallOutcome;
use crate::escalation::worker::{Outcome, Worker};
use crate::store::{ClaimedJob, now_ms};

/// Pages (query plus queryMore, Case pages and child pages together) one poll reads at most.
/// A poll that would need more records what it read but keeps the watermark, so nothing is
/// skipped; the operator sees the warning and raises `poll_page_size`.
pub const MAX_PAGES_PER_POLL: u64 = 500;

/// What one poll found.
#[derive(Debug, Default)]
pub struct Found {
    pub events: Vec<CaseEvent>,
    /// The newest `SystemModstamp` among the records.
    pub newest: Option<DateTime<Utc>>,
    /// SOQL calls made.
    pub calls: u64,
    /// Stopped at [`MAX_PAGES_PER_POLL`].
    pub truncated: bool,
}

/// The poll query. `since` is the lower bound on `SystemModstamp`; `own_user` (the
/// integration user) is excluded: the gateway's own comments never come back.
pub fn poll_query(
    case: &CaseConfig,
    own_user: &SalesforceId,
    since: DateTime<Utc>,
) -> Result<String, soql::SoqlError> {
    let w = since.to_rfc3339_opts(SecondsFormat::Millis, true);
    let me = soql::quote(own_user.as_str())?;
    Ok(format!(
        "SELECT Id, CaseNumber, \
         (SELECT Id, CommentBody, IsPublished, CreatedById, CreatedBy.Name, CreatedDate, SystemModstamp \
          FROM CaseComments WHERE IsPublished = true AND SystemModstamp >= {w} AND CreatedById != {me} \
          ORDER BY SystemModstamp), \
         (SELECT Id, TextBody, HtmlBody, Subject, CreatedById, CreatedBy.Name, CreatedDate, SystemModstamp \
          FROM EmailMessages WHERE Incoming = false AND SystemModstamp >= {w} AND CreatedById != {me} \
          ORDER BY SystemModstamp) \
         FROM Case WHERE {field} = {value} AND IsClosed = false",
        field = case.from_field,
        value = soql::quote(&case.from_value)?,
    ))
}

/// Runs the query to its last page (bounded by [`MAX_PAGES_PER_POLL`]) and turns every record
/// into an event. `calls` counts as it goes, so a failed poll still reports what it spent.
pub async fn run_query(
    client: &Client,
    soql: &str,
    page_size: u16,
    org: &SalesforceId,
    found: &mut Found,
) -> Result<(), salesforce::Error> {
    found.calls += 1;
    let mut page = client.query_with_batch_size(soql, page_size).await?;
    loop {
        for case in std::mem::take(&mut page.records) {
            let Some(case_id) = str_field(&case, "Id").and_then(|s| SalesforceId::parse(s).ok())
            else {
                continue;
            };
            let case_number = str_field(&case, "CaseNumber").map(str::to_string);
            for (relationship, kind) in [
                ("CaseComments", EventKind::CaseCommentCreated),
                ("EmailMessages", EventKind::EmailMessageSent),
            ] {
                let Some(mut child) = case
                    .get(relationship)
                    .filter(|v| !v.is_null())
                    .and_then(|v| serde_json::from_value::<salesforce::QueryPage>(v.clone()).ok())
                else {
                    continue;
                };
                loop {
                    for record in &child.records {
                        if let Some((event, modstamp)) =
                            event_of(record, kind, org, &case_id, case_number.as_deref())
                        {
                            found.newest = found.newest.max(Some(modstamp));
                            found.events.push(event);
                        }
                    }
                    let Some(next) = child.next_records_url.take().filter(|_| !child.done) else {
                        break;
                    };
                    if found.calls >= MAX_PAGES_PER_POLL {
                        found.truncated = true;
                        return Ok(());
                    }
                    found.calls += 1;
                    child = client.query_more(&next).await?;
                }
            }
        }
        let Some(next) = page.next_records_url.take().filter(|_| !page.done) else {
            return Ok(());
        };
        if found.calls >= MAX_PAGES_PER_POLL {
            found.truncated = true;
            return Ok(());
        }
        found.calls += 1;
        page = client.query_more(&next).await?;
    }
}

fn str_field<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record.get(name).and_then(Value::as_str)
}

/// One child record as an event (the same normalization as a pushed one), with its
/// `SystemModstamp`. A record missing its id, author or dates is skipped.
fn event_of(
    record: &Value,
    kind: EventKind,
    org: &SalesforceId,
    case_id: &SalesforceId,
    case_number: Option<&str>,
) -> Option<(CaseEvent, DateTime<Utc>)> {
    let id = SalesforceId::parse(str_field(record, "Id")?).ok()?;
    let author = SalesforceId::parse(str_field(record, "CreatedById")?).ok()?;
    if id.key_prefix() != kind.id_prefix() || author.key_prefix() != "005" {
        return None;
    }
    let occurred_at = parse_datetime(str_field(record, "CreatedDate")?)?;
    let modstamp = str_field(record, "SystemModstamp")
        .and_then(parse_datetime)
        .unwrap_or(occurred_at);
    let name = record
        .get("CreatedBy")
        .and_then(|c| str_field(c, "Name"))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(salesforce::events::MAX_NAME_CHARS).collect());
    let (body, is_public) = match kind {
        EventKind::CaseCommentCreated => (
            EventBody {
                text: str_field(record, "CommentBody").map(str::to_string),
                html: None,
            },
            record.get("IsPublished").and_then(Value::as_bool) == Some(true),
        ),
        EventKind::EmailMessageSent => (
            EventBody {
                text: str_field(record, "TextBody").map(str::to_string),
                html: str_field(record, "HtmlBody").map(str::to_string),
            },
            true,
        ),
    };
    Some((
        CaseEvent {
            event_id: id,
            kind,
            org_id: org.clone(),
            case_id: case_id.clone(),
            case_number: case_number.map(str::to_string),
            occurred_at,
            author: Author { id: author, name },
            body,
            is_public,
        },
        modstamp,
    ))
}

impl Worker {
    pub(crate) async fn poll_case_replies(&self, job: &ClaimedJob) -> (Outcome, CallOutcome) {
        let cfg = &self.config.case_replies;
        let interval = Duration::from_secs(cfg.poll_interval_secs);
        if !cfg.poll {
            // This replica does not poll, but another (sharing the database) may: leave the
            // job for the next interval rather than end it for everyone.
            let next_run = now_ms() + interval.as_millis() as i64;
            let outcome = match self
                .store
                .finish_poll(
                    job,
                    &self.id,
                    &[],
                    None,
                    next_run,
                    self.config.worker.max_attempts,
                )
                .await
            {
                Ok(_) => Outcome::Finished,
                Err(e) => Outcome::Postpone {
                    after: interval,
                    error: format!("database: {e}"),
                },
            };
            return (outcome, CallOutcome::NoCall);
        }
        let wait = |error: String, retry_after: Option<Duration>| Outcome::Postpone {
            after: self.backoff(job.attempt, retry_after).max(interval),
            error,
        };
        let (org_id, user_id) = match super::own_identity(&self.client).await {
            Ok(Some(identity)) => identity,
            Ok(None) => {
                let error =
                    "the Salesforce token came without an identity URL naming the org and user"
                        .into();
                return (wait(error, None), CallOutcome::NoCall);
            }
            Err(e) => {
                let class = e.class();
                return (
                    wait(e.to_string(), e.retry_after()),
                    CallOutcome::Failed(class),
                );
            }
        };
        let watermark = match self.store.poll_watermark().await {
            Ok(w) => w.as_deref().and_then(parse_datetime),
            Err(e) => return (wait(format!("database: {e}"), None), CallOutcome::NoCall),
        };
        let started = Utc::now();
        let overlap = chrono::Duration::seconds(cfg.poll_overlap_secs as i64);
        let since = watermark.unwrap_or(started) - overlap;
        let soql = match poll_query(&self.config.case, &user_id, since) {
            Ok(q) => q,
            Err(e) => {
                let error = format!("case.from_value cannot be used in a SOQL literal: {e}");
                return (Outcome::Dead { error }, CallOutcome::NoCall);
            }
        };
        let mut found = Found::default();
        let result = run_query(&self.client, &soql, cfg.poll_page_size, &org_id, &mut found).await;
        self.replies.count_poll_run(found.calls);
        if let Err(e) = result {
            let class = e.class();
            tracing::warn!(
                error_code = e.code().unwrap_or("none"),
                calls = found.calls,
                "The case-reply poll failed; polling again later."
            );
            return (
                wait(e.to_string(), e.retry_after()),
                CallOutcome::Failed(class),
            );
        }
        if found.truncated {
            tracing::warn!(
                pages = found.calls,
                "The case-reply poll stopped at its page limit; the watermark stays. Raise case_replies.poll_page_size."
            );
        }
        let next = if found.truncated {
            watermark
        } else {
            // Nothing newer seen: the next poll starts from this one's start (less the overlap).
            Some(found.newest.max(watermark).unwrap_or(started))
        };
        let next = next.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
        let next_run = now_ms() + interval.as_millis() as i64;
        match self
            .store
            .finish_poll(
                job,
                &self.id,
                &found.events,
                next.as_deref(),
                next_run,
                self.config.worker.max_attempts,
            )
            .await
        {
            Ok(Some(new)) => {
                tracing::info!(
                    found = found.events.len(),
                    new,
                    calls = found.calls,
                    "Polled Salesforce for rep replies."
                );
                if new > 0 {
                    self.wake.notify_one();
                }
                (Outcome::Finished, CallOutcome::Answered)
            }
            Ok(None) => {
                tracing::warn!("Lost the poller's lease before recording the poll.");
                (Outcome::Finished, CallOutcome::Answered)
            }
            Err(e) => (wait(format!("database: {e}"), None), CallOutcome::Answered),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn org() -> SalesforceId {
        SalesforceId::parse("00D5g000004Hnd0").unwrap()
    }

    #[test]
    fn the_query_escapes_the_configured_value_and_excludes_our_own_writes() {
        let mut case = crate::Config::defaults().case;
        case.from_value = "o'cx\\".into();
        let me = SalesforceId::parse("00558000001N0Ke").unwrap();
        let since = parse_datetime("2026-12-02T10:00:00.5Z").unwrap();
        let q = poll_query(&case, &me, since).unwrap();
        assert!(
            q.ends_with(&format!(
                "FROM Case WHERE {} = 'o\\'cx\\\\' AND IsClosed = false",
                case.from_field
            )),
            "{q}"
        );
        assert_eq!(
            q.matches("SystemModstamp >= 2026-12-02T10:00:00.500Z")
                .count(),
            2,
            "{q}"
        );
        assert_eq!(
            q.matches("CreatedById != '00558000001N0KeAAK'").count(),
            2,
            "{q}"
        );
        assert!(q.contains("IsPublished = true") && q.contains("Incoming = false"));
        case.from_value = "bad\u{1}".into();
        assert!(poll_query(&case, &me, since).is_err());
    }

    #[test]
    fn records_become_the_same_events_as_pushed_ones() {
        let case_id = SalesforceId::parse("500Hu000020yLuH").unwrap();
        let comment = json!({
            "Id": "00a5g0000000001", "CommentBody": "Hi", "IsPublished": true,
            "CreatedById": "0055g0000000Rep", "CreatedBy": {"Name": " Rita Rep "},
            "CreatedDate": "2026-12-02T10:00:00.000+0000",
            "SystemModstamp": "2026-12-02T10:00:01.000+0000"
        });
        let (event, modstamp) = event_of(
            &comment,
            EventKind::CaseCommentCreated,
            &org(),
            &case_id,
            Some("00001001"),
        )
        .unwrap();
        assert_eq!(event.event_id.as_str().len(), 18);
        assert_eq!(event.author.name.as_deref(), Some("Rita Rep"));
        assert_eq!(event.body.text.as_deref(), Some("Hi"));
        assert!(event.is_public);
        assert_eq!(modstamp, parse_datetime("2026-12-02T10:00:01Z").unwrap());
        // Round-trips through the stored form a pushed event has.
        assert_eq!(CaseEvent::parse(event.to_json().as_bytes()).unwrap(), event);

        let email = json!({
            "Id": "02s5g0000000001", "TextBody": null, "HtmlBody": "<p>Hello</p>",
            "CreatedById": "0055g0000000Rep", "CreatedBy": null,
            "CreatedDate": "2026-12-02T10:00:00.000+0000"
        });
        let (event, _) =
            event_of(&email, EventKind::EmailMessageSent, &org(), &case_id, None).unwrap();
        assert_eq!(event.body.html.as_deref(), Some("<p>Hello</p>"));
        assert_eq!(event.author.name, None);
        // A comment id under the email relationship, or no author, is skipped.
        assert!(
            event_of(
                &comment,
                EventKind::EmailMessageSent,
                &org(),
                &case_id,
                None
            )
            .is_none()
        );
        let mut anonymous = comment.clone();
        anonymous["CreatedById"] = Value::Null;
        assert!(
            event_of(
                &anonymous,
                EventKind::CaseCommentCreated,
                &org(),
                &case_id,
                None
            )
            .is_none()
        );
    }
}
