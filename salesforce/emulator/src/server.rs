//! The HTTP server: shared state, the accept loop (which can drop a connection after a request
//! committed), and the public `spawn` / `EmulatorHandle` API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::routing::{any, get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::EmulatorConfig;
use crate::faults::{FaultState, Faults};
use crate::rest::query::Cursors;
use crate::schema::Record;
use crate::stats::Stats;
use crate::store::Store;
use crate::{admin, drain, identity, oauth, oauth_authorize, oauth_userinfo, rest, soap, tls};

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A live access token.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) user_id: String,
    pub(crate) issued: Instant,
    /// API calls made with this token.
    pub(crate) calls: u32,
    /// The web-server-flow refresh token it came from (revoking that ends it too).
    pub(crate) refresh: Option<String>,
}

/// Everything the handlers share.
pub(crate) struct AppState {
    pub(crate) config: EmulatorConfig,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub(crate) url: String,
    pub(crate) store: Mutex<Store>,
    pub(crate) sessions: Mutex<HashMap<String, Session>>,
    pub(crate) faults: Mutex<FaultState>,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) cursors: Mutex<Cursors>,
    /// username (lower-case) → 18-char User id.
    users: HashMap<String, String>,
    /// Messaging for In-App and Web (Enhanced Chat) and its rep console.
    pub(crate) miaw: crate::miaw::Miaw,
    /// Rep replies on Cases and the case webhook.
    pub(crate) cases: crate::cases::Cases,
    /// The OAuth web-server flow: callback URLs, codes, issued refresh tokens.
    pub(crate) web_flow: crate::oauth_codes::WebFlow,
}

impl AppState {
    pub(crate) fn new(config: EmulatorConfig, url: String) -> Result<Self, String> {
        config.validate()?;
        let config_miaw = config.miaw.clone();
        let case_webhook = config.case_webhook.clone();
        let mut store = Store::new(&config)?;
        let mut users = HashMap::new();
        let ids: Vec<String> = config.users.iter().map(|_| store.mint_id("User")).collect();
        let now = crate::dml::now_string();
        let first = ids.first().cloned().unwrap_or_default();
        let system = |id: &str| system_record(id, &now, &first);
        // Profiles and permission sets named by the users, in first-seen order.
        let mut profiles: Vec<(String, String)> = Vec::new();
        let mut permission_sets: Vec<(String, String)> = Vec::new();
        for u in &config.users {
            if !profiles.iter().any(|(name, _)| *name == u.profile) {
                let id = store.mint_id(crate::schema::PROFILE);
                let mut r = system(&id);
                r.insert("Name".into(), Value::String(u.profile.clone()));
                store.insert(crate::schema::PROFILE, r);
                profiles.push((u.profile.clone(), id));
            }
            for ps in &u.permission_sets {
                if !permission_sets.iter().any(|(name, _)| name == ps) {
                    let id = store.mint_id(crate::schema::PERMISSION_SET);
                    let mut r = system(&id);
                    r.insert("Name".into(), Value::String(ps.clone()));
                    r.insert("Label".into(), Value::String(ps.replace('_', " ")));
                    store.insert(crate::schema::PERMISSION_SET, r);
                    permission_sets.push((ps.clone(), id));
                }
            }
        }
        let id_of = |list: &[(String, String)], name: &str| {
            list.iter()
                .find(|(n, _)| n == name)
                .map(|(_, id)| id.clone())
                .unwrap_or_default()
        };
        let user_def = store
            .schema
            .object("User")
            .cloned()
            .ok_or("schema has no User object")?;
        for (u, id) in config.users.iter().zip(&ids) {
            let mut r = Record::new();
            for f in &user_def.fields {
                r.insert(f.name.clone(), f.default.clone().unwrap_or(Value::Null));
            }
            r.extend(system(id));
            r.insert("Username".into(), Value::String(u.username.clone()));
            r.insert(
                "Name".into(),
                Value::String(u.name.clone().unwrap_or_else(|| u.username.clone())),
            );
            r.insert(
                "Email".into(),
                Value::String(u.email.clone().unwrap_or_else(|| u.username.clone())),
            );
            r.insert(
                "ProfileId".into(),
                Value::String(id_of(&profiles, &u.profile)),
            );
            store.insert("User", r);
            users.insert(u.username.to_ascii_lowercase(), id.clone());
            let mut assigned: Vec<&String> = Vec::new();
            for ps in &u.permission_sets {
                if assigned.contains(&ps) {
                    continue;
                }
                assigned.push(ps);
                let psa_id = store.mint_id(crate::schema::PERMISSION_SET_ASSIGNMENT);
                let mut psa = system(&psa_id);
                psa.insert("AssigneeId".into(), Value::String(id.clone()));
                psa.insert(
                    "PermissionSetId".into(),
                    Value::String(id_of(&permission_sets, ps)),
                );
                store.insert(crate::schema::PERMISSION_SET_ASSIGNMENT, psa);
            }
        }
        store.insert(
            crate::schema::ORGANIZATION,
            organization_record(&config, &first, &now),
        );
        let web_flow = crate::oauth_codes::WebFlow::new(&config);
        Ok(AppState {
            web_flow,
            config,
            url,
            store: Mutex::new(store),
            sessions: Mutex::new(HashMap::new()),
            faults: Mutex::new(FaultState::new(Faults::default())),
            stats: Mutex::new(Stats::default()),
            cursors: Mutex::new(Cursors::default()),
            users,
            miaw: crate::miaw::Miaw::new(config_miaw)?,
            cases: crate::cases::Cases::new(case_webhook),
        })
    }

    pub(crate) fn user_id(&self, username: &str) -> String {
        self.users
            .get(&username.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// The user API clients act as: the first connected app's run-as user, else the first
    /// configured user. Rep users are always distinct from it.
    pub(crate) fn integration_user_id(&self) -> String {
        let username = self
            .config
            .connected_apps
            .iter()
            .find_map(|a| a.run_as.clone())
            .or_else(|| self.config.users.first().map(|u| u.username.clone()))
            .unwrap_or_default();
        self.user_id(&username)
    }

    /// The daily API limit in force (fault override or config).
    pub(crate) fn daily_limit(&self) -> u64 {
        lock(&self.faults)
            .faults
            .daily_limit
            .unwrap_or(self.config.daily_api_limit)
    }
}

/// A record with only its id and system fields set.
fn system_record(id: &str, now: &str, created_by: &str) -> Record {
    let mut r = Record::new();
    r.insert("Id".into(), Value::String(id.to_string()));
    r.insert("IsDeleted".into(), Value::Bool(false));
    for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        r.insert(f.into(), Value::String(now.to_string()));
    }
    for f in ["CreatedById", "LastModifiedById"] {
        r.insert(f.into(), Value::String(created_by.to_string()));
    }
    r
}

/// The org's own `Organization` record.
fn organization_record(config: &EmulatorConfig, user_id: &str, now: &str) -> Record {
    let mut r = Record::new();
    r.insert(
        "Id".into(),
        Value::String(crate::ids::org_id18(&config.org_id)),
    );
    r.insert("IsDeleted".into(), Value::Bool(false));
    for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        r.insert(f.into(), Value::String(now.to_string()));
    }
    for f in ["CreatedById", "LastModifiedById"] {
        r.insert(f.into(), Value::String(user_id.to_string()));
    }
    let text = |s: &str| Value::String(s.to_string());
    r.insert("Name".into(), text(crate::config::ORG_NAME));
    r.insert("OrganizationType".into(), text("Developer Edition"));
    r.insert("InstanceName".into(), text("EMU1"));
    r.insert("IsSandbox".into(), Value::Bool(false));
    r.insert("NamespacePrefix".into(), Value::Null);
    r.insert("Country".into(), Value::Null);
    r.insert("TimeZoneSidKey".into(), text("GMT"));
    r.insert("LanguageLocaleKey".into(), text("en_US"));
    r.insert("DefaultLocaleSidKey".into(), text("en_US"));
    r
}

/// Request extension: the connection's drop signal. Notifying it makes the connection task
/// close the socket without writing a response.
#[derive(Clone)]
pub(crate) struct DropSignal(pub(crate) Arc<Notify>);

/// The axum router (used per connection with a `DropSignal` extension added).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(oauth::token))
        .route("/services/oauth2/revoke", post(oauth::revoke))
        .route(
            "/services/oauth2/authorize",
            get(oauth_authorize::show).post(oauth_authorize::login),
        )
        .route(
            "/services/oauth2/userinfo",
            get(oauth_userinfo::get).post(oauth_userinfo::get),
        )
        .route("/services/Soap/u/{version}", post(soap::partner))
        .route("/id/{org}/{user}", get(identity::get))
        .route("/services/data", get(rest::versions))
        .route("/services/data/", get(rest::versions))
        .route("/services/data/{version}", any(rest::entry))
        .route("/services/data/{version}/", any(rest::entry))
        .route("/services/data/{version}/{*rest}", any(rest::entry))
        .route(
            "/__emulator/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .route("/__emulator/stats", get(admin::get_stats))
        .route("/__emulator/reset-stats", post(admin::reset_stats))
        .route("/__emulator/records/{object}", get(admin::get_records))
        .merge(crate::miaw::routes())
        .merge(crate::cases::routes())
        .fallback(rest::not_found)
        .layer(axum::middleware::from_fn(drain::drain_body))
        .with_state(state)
}

/// A running emulator.
pub struct EmulatorHandle {
    state: Arc<AppState>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash): both the login URL and the instance URL.
    /// With TLS the scheme is `https`; with a configured `public_url`, that URL.
    pub fn url(&self) -> String {
        self.state.url.clone()
    }

    /// The generated CA certificate (PEM) clients must trust, when TLS is self-signed.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The socket address the emulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.state.config
    }

    pub fn stats(&self) -> Stats {
        lock(&self.state.stats).clone()
    }

    /// Replaces the fault plan (and reseeds its RNG).
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.state.faults).set(faults);
    }

    /// The fault plan as it stands now (`fail_next` & co. count down as they fire).
    pub fn faults(&self) -> Faults {
        lock(&self.state.faults).faults.clone()
    }

    /// Replaces the MIAW fault plan (as `PUT /__emulator/miaw/faults` does).
    pub fn set_miaw_faults(&self, faults: crate::miaw::faults::MiawFaults) {
        self.state.miaw.set_faults(faults);
    }

    /// Whether new MIAW conversations find an available agent (as
    /// `PUT /__emulator/miaw/availability` sets it).
    pub fn set_agents_available(&self, available: bool) {
        self.state.miaw.lock().agents_available = available;
    }

    /// Sets (or, with `None`, clears) the case webhook, as `PUT /__emulator/case-webhook` does.
    pub fn set_case_webhook(
        &self,
        webhook: Option<crate::config::CaseWebhookConfig>,
    ) -> Result<(), String> {
        if let Some(w) = &webhook {
            w.validate()?;
        }
        *lock(&self.state.cases.webhook) = webhook;
        Ok(())
    }

    /// The PEM certificate whose key signs the case webhook's JWTs (the key is made on the
    /// first call, which takes a moment; call it from a blocking context or accept the pause).
    pub fn case_webhook_certificate_pem(&self) -> Result<String, String> {
        crate::cases::webhook::signer(&self.state).map(|s| s.certificate_pem.clone())
    }

    /// The case webhook's delivery attempts, oldest first (the last
    /// [`crate::cases::DELIVERY_LOG_LIMIT`]).
    pub fn case_webhook_deliveries(&self) -> Vec<crate::cases::CaseWebhookDelivery> {
        lock(&self.state.cases.deliveries).iter().cloned().collect()
    }

    /// Registers another callback URL (exact match) for the web-server flow of the connected
    /// app `client_id`, e.g. a gateway's `http://127.0.0.1:PORT/console/oauth/callback` once
    /// its port is known. Idempotent. Errors: unknown app, a URL that is not absolute or has a
    /// fragment, or the app's `web_flow.max_callback_urls` reached.
    pub fn add_callback_url(&self, client_id: &str, url: &str) -> Result<(), String> {
        self.state.web_flow.add_callback_url(client_id, url)
    }

    /// Snapshot of the live records of an object (empty for an unknown object).
    pub fn records(&self, object: &str) -> Vec<Record> {
        lock(&self.state.store).snapshot(object)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(self) {
        self.state.miaw.shutdown.cancel();
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Starts an emulator on `listener` (bind `127.0.0.1:0` in tests). It serves HTTPS when
/// `config.tls` is set, and hands out `config.public_url` (default: the scheme and listen address)
/// in every absolute URL.
pub async fn spawn(
    config: EmulatorConfig,
    listener: TcpListener,
) -> std::io::Result<EmulatorHandle> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    config.validate().map_err(invalid)?;
    let addr = listener.local_addr()?;
    // A wildcard bind is reachable on loopback; advertise that.
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let public_host = match &config.public_url {
        Some(u) => Some(crate::config::public_host(u).map_err(invalid)?),
        None => None,
    };
    let tls = match &config.tls {
        Some(t) => Some(tls::build(t, public_host.as_deref()).map_err(invalid)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = config
        .public_url()
        .unwrap_or_else(|| format!("{scheme}://{shown}"));
    let (acceptor, ca_pem) = match tls {
        Some(t) => (Some(tokio_rustls::TlsAcceptor::from(t.server)), t.ca_pem),
        None => (None, None),
    };
    let state = AppState::new(config, url).map_err(invalid)?;
    let state = Arc::new(state);
    let app = router(state.clone());
    let cancel = CancellationToken::new();
    if let Some(rx) = lock(&state.cases.queue_rx).take() {
        tokio::spawn(crate::cases::webhook::run(
            state.clone(),
            rx,
            cancel.clone(),
        ));
    }
    let task = tokio::spawn(accept_loop(listener, acceptor, app, cancel.clone()));
    Ok(EmulatorHandle {
        state,
        addr,
        ca_pem,
        cancel,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    cancel: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let signal = Arc::new(Notify::new());
        let ext = DropSignal(signal.clone());
        let svc = tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ext.clone());
                req
            },
        );
        let cancel = cancel.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(async move {
            match acceptor {
                None => serve_connection(stream, svc, signal, cancel, peer).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        _ = cancel.cancelled() => return,
                        h = acceptor.accept(stream) => h,
                    };
                    match handshake {
                        Ok(tls) => serve_connection(tls, svc, signal, cancel, peer).await,
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

/// Serves one connection (plain or TLS) until it ends, the drop fault fires, or shutdown.
async fn serve_connection<I, S>(
    io: I,
    svc: S,
    signal: Arc<Notify>,
    cancel: CancellationToken,
    peer: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = signal.notified() => {
                tracing::info!(%peer, "dropping connection after commit (fault injection)");
                break;
            }
            _ = cancel.cancelled(), if !shutting_down => {
                conn.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
    }
}
