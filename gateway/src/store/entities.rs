//! sea-orm entities. The schema itself is owned by the `migrations` crate.

pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub channel: String,
        pub route: String,
        pub status: String,
        pub customer_name: Option<String>,
        pub customer_email: Option<String>,
        pub customer_phone: Option<String>,
        pub language: String,
        pub priority: String,
        pub subject: Option<String>,
        pub request_hash: String,
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        pub salesforce_case_id: Option<String>,
        pub salesforce_case_id15: Option<String>,
        pub salesforce_case_number: Option<String>,
        pub salesforce_miaw_session_id: Option<String>,
        pub salesforce_messaging_session_id: Option<String>,
        pub comments_written: i32,
        pub salesforce_calls: i32,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The id in lower case, unique: Salesforce's external ids ignore case.
        pub id_folded: Option<String>,
        /// `customer_phone` in E.164 (what lookups compare), when it parses.
        pub customer_phone_e164: Option<String>,
        /// The token in this session's email Reply-To address (lower case), once
        /// one was needed.
        pub reply_token: Option<String>,
        /// The earlier session whose still-open Case this one joined.
        pub joined_session_id: Option<String>,
        /// When the customer last wrote on the session's channel (epoch ms): their newest
        /// inbound message, else the escalation's newest customer turn. Reply windows
        /// (WhatsApp's 24 hours) are counted from it.
        pub customer_last_message_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub session_id: String,
        pub at: DateTimeUtc,
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub data: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub session_id: String,
        pub state: String,
        pub attempts: i32,
        pub max_attempts: i32,
        pub run_at: i64,
        pub lease_until: Option<i64>,
        pub locked_by: Option<String>,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        /// The typed `JobKind` as JSON; `None` on `create_case` rows, whose
        /// payload is `session_id`.
        #[sea_orm(column_type = "Text", nullable)]
        pub payload: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    /// One outbound message to a customer (the outbox).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deliveries")]
    pub struct Model {
        /// The stable delivery id, sent with every attempt.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub session_id: String,
        pub channel: String,
        /// `agent.message`, `system.message`, … (design §7.1).
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub text: String,
        pub sender_name: Option<String>,
        /// The `ReplyTarget` as JSON.
        #[sea_orm(column_type = "Text")]
        pub target: String,
        /// queued | sending | sent | failed
        pub state: String,
        pub attempts: i32,
        pub provider_id: Option<String>,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        /// The provider's newest report on the message (`channels::ProviderStatus` wire
        /// name: queued, sent, delivered, read, undelivered, failed); only moves forward.
        pub provider_status: Option<String>,
        pub provider_status_at: Option<i64>,
        /// The provider's error code with an `undelivered` / `failed` report.
        pub provider_error_code: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod api_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub token_hash: String,
        pub scopes: String,
        pub created_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod idempotency_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub idempotency_key: String,
        pub request_hash: String,
        pub state: String,
        pub lock_id: String,
        pub status: Option<i32>,
        pub content_type: Option<String>,
        #[sea_orm(column_type = "Blob")]
        pub body: Option<Vec<u8>>,
        pub created_at: i64,
        pub locked_at: i64,
        pub completed_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod live_session {
    use sea_orm::entity::prelude::*;

    /// A session on the live-messaging route: its MIAW conversation, the end
    /// user's token and stream cursor, and which replica owns the stream.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "live_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub session_id: String,
        /// The client-chosen conversation id (UUIDv5 of the session id).
        pub conversation_id: String,
        /// The end user's access token; erased when the conversation ends.
        #[sea_orm(column_type = "Text", nullable)]
        pub token: Option<String>,
        pub token_expires_at: Option<i64>,
        /// The last stream event applied (`Last-Event-Id` on reconnect).
        pub last_event_id: Option<String>,
        /// opening | waiting | active | closing | ended | fallback
        pub state: String,
        pub rep_name: Option<String>,
        /// The replica holding the event stream, until `lease_until`.
        pub owner: Option<String>,
        pub lease_until: Option<i64>,
        /// Past this moment an unopened conversation falls back to a Case.
        pub deadline_at: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod live_message {
    use sea_orm::entity::prelude::*;

    /// One message to the rep, sent in `seq` order.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "live_messages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        /// The MIAW message id (a UUID), the same on every attempt.
        pub id: String,
        pub session_id: String,
        /// opening | customer | file | notice
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub text: String,
        /// queued | sent | failed
        pub state: String,
        pub attempts: i32,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod salesforce_event {
    use sea_orm::entity::prelude::*;

    /// One rep-output record heard of (pushed or polled), keyed by its 18-char
    /// Salesforce id: the idempotency key both paths share.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "salesforce_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        /// `push` or `poll`: who told us first.
        pub source: String,
        /// `case_comment.created` or `email_message.sent`.
        pub kind: String,
        /// The Case's 18-char id.
        pub case_id: String,
        /// The session it was matched to, once known.
        pub session_id: Option<String>,
        /// `queued` (a `sync_case_event` job will decide), `delivered`,
        /// `ignored_<why>` (unknown case, internal, our own write, …).
        pub outcome: String,
        /// The normalized event as JSON (`salesforce::events::CaseEvent`).
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        pub received_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod email_message {
    use sea_orm::entity::prelude::*;

    /// One `Message-ID` of a session's email thread (without angle brackets).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "email_messages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub session_id: String,
        pub message_id: String,
        /// `in` (the customer's) or `out` (ours).
        pub direction: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod inbound_email {
    use sea_orm::entity::prelude::*;

    /// One customer email posted to `POST /channels/email/inbound`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inbound_emails")]
    pub struct Model {
        /// The dedupe key: derived from the `Message-ID` (or the raw bytes' hash).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `appended`, `unmatched`, `ignored_auto_reply`, … .
        pub state: String,
        pub session_id: Option<String>,
        pub message_id: Option<String>,
        pub from_address: Option<String>,
        pub subject: Option<String>,
        pub size: i64,
        pub reason: Option<String>,
        /// The raw message, kept for unmatched ones (operators can assign them).
        #[sea_orm(column_type = "Text", nullable)]
        pub raw: Option<String>,
        pub received_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod case_note {
    use sea_orm::entity::prelude::*;

    /// An internal note the gateway writes on a session's Case, once.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "case_notes")]
    pub struct Model {
        /// Stable id (derived from the session and what the note is about).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub session_id: String,
        /// `inbound_email`, `delivery_failed`, `joined_case`, … .
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        /// `queued`, `written`, `failed`.
        pub state: String,
        /// The CaseComment (or EmailMessage) id once written.
        pub salesforce_id: Option<String>,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sync_state {
    use sea_orm::entity::prelude::*;

    /// A named value a singleton worker keeps (the poller's watermark).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sync_state")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        #[sea_orm(column_type = "Text")]
        pub value: String,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod inbound_message {
    use sea_orm::entity::prelude::*;

    /// One customer message a provider webhook brought (SMS, WhatsApp, a bridge).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inbound_messages")]
    pub struct Model {
        /// `<channel>:<provider message id>`, byte for byte: the dedupe key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub channel: String,
        pub provider_message_id: String,
        pub session_id: Option<String>,
        /// The sender (E.164 for SMS and WhatsApp, the bridge's address).
        pub from_address: Option<String>,
        /// Our address they wrote to.
        pub to_address: Option<String>,
        /// `to_rep`, `case_note`, `opt_out`, `opt_in`, `help`, `unmatched`, … .
        pub state: String,
        /// The text (erased by retention).
        #[sea_orm(column_type = "Text", nullable)]
        pub text: Option<String>,
        /// The attachments as JSON (`[channels::Media]`).
        #[sea_orm(column_type = "Text", nullable)]
        pub media: Option<String>,
        pub received_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod opt_out {
    use sea_orm::entity::prelude::*;

    /// A customer who opted out of messages on a delivering channel.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opt_outs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel: String,
        /// E.164 number (or the channel's address form).
        #[sea_orm(primary_key, auto_increment = false)]
        pub address: String,
        pub opted_out_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod secret {
    use sea_orm::entity::prelude::*;

    /// A secret sealed with AES-256-GCM under `key_id` (see `crate::secrets`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub key_id: String,
        pub sealed: String,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod console_user {
    use sea_orm::entity::prelude::*;

    /// A local console account (Argon2id PHC hash; `username_key` is the folded username).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "console_users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub username: String,
        #[sea_orm(unique)]
        pub username_key: String,
        pub password_hash: String,
        pub role: String,
        pub created_at: i64,
        pub disabled_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod console_session {
    use sea_orm::entity::prelude::*;

    /// A signed-in operator; `id` is the SHA-256 (hex) of the cookie's secret.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "console_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub subject: String,
        pub display_name: String,
        pub source: String,
        pub role: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub last_seen_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_flow {
    use sea_orm::entity::prelude::*;

    /// An authorization-code + PKCE round trip in progress, keyed by SHA-256 (hex) of `state`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_flows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub state_hash: String,
        pub purpose: String,
        pub verifier_sealed: String,
        pub key_id: String,
        pub started_by: Option<String>,
        pub return_to: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
