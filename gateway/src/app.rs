//! The application as a value: build it from a config and a listener, then run
//! it until a shutdown signal. `main`, the demo, the benchmarks and the tests all
//! start the gateway this way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio_util::task::TaskTracker;
use tower_http::timeout::RequestBodyDeadlineLayer;

use crate::config::{Config, HttpConfig};
use crate::escalation::gate::{Gate, GateConfig};
use crate::escalation::worker::Worker;
use crate::http::{self, AppState, SandboxInfo};
use crate::sandbox_channels::{self, ChannelEmulators};
use crate::store::{Scope, Store};

/// Why the gateway could not start, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot open the database: {0}. Check database_url (HANDOFF_DATABASE_URL) and that the server is reachable."
    )]
    Database(#[from] sea_orm::DbErr),
    #[error(
        "salesforce.credentials is not configured. Set it in the config file (see deploy/handoff.example.toml) or via HANDOFF_SALESFORCE__CREDENTIALS__*, or set [console.salesforce] client_id (and a secrets key) to connect the org from the console — or try `handoff serve --sandbox` to run against the built-in emulator."
    )]
    NoCredentials,
    #[error("cannot build the Salesforce client: {0}")]
    Salesforce(String),
    #[error(
        "live messaging configuration: {0}. Fix that [miaw] setting or its HANDOFF_MIAW__* variable."
    )]
    Config(String),
    #[error(
        "case replies configuration: {0}. Fix that [case_replies] setting or its HANDOFF_CASE_REPLIES__* variable."
    )]
    CaseReplies(String),
    #[error("cannot start the built-in Salesforce emulator: {0}")]
    Emulator(std::io::Error),
    #[error("cannot start the built-in SMS and WhatsApp emulators: {0}")]
    ChannelEmulators(String),
    #[error("cannot set up the console: {0}")]
    Console(String),
    #[error("cannot read the listener address: {0}")]
    Listener(std::io::Error),
    #[error(
        "refusing to run the sandbox on {0}: GET /v1/sandbox hands an admin token to anyone who can reach it. Listen on loopback (--listen 127.0.0.1:8080), or pass --sandbox-allow-remote (sandbox.allow_remote = true) if every client that can reach this address may have that token."
    )]
    SandboxRemote(SocketAddr),
    #[error(
        "refusing to run the sandbox on a configured database: it would mint an admin token into it. The sandbox uses a scratch SQLite file; unset HANDOFF_DATABASE_URL, or run `handoff serve` without --sandbox."
    )]
    SandboxDatabase,
    #[error(
        "channel configuration: {0}. Fix that setting in the config file or its HANDOFF_CHANNELS__* variable."
    )]
    Channels(#[from] channels::ChannelError),
    #[error(
        "inbound email configuration: {0}. Fix that setting in the config file or its HANDOFF_CHANNELS__EMAIL__INBOUND__* variable."
    )]
    Inbound(String),
    /// `[secrets]` is wrong; the message names the setting.
    #[error("secrets configuration: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
}

/// A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64.
fn new_webhook_secret() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A case-webhook (HMAC) secret: 32 random bytes in lowercase hex.
fn new_case_webhook_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A built, not yet running, gateway.
/// The emulator's default Custom Client deployment, used by the sandbox and the demo.
pub const SANDBOX_MIAW_DEPLOYMENT: &str = "Handoff_Chat";

/// The local console admin the sandbox creates (its password is in `GET /v1/sandbox`).
pub const SANDBOX_CONSOLE_ADMIN: &str = "admin";

pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: Arc<Worker>,
    supervisor: Option<Arc<crate::live::supervisor::Supervisor>>,
    emulator: Option<sf_emulator::EmulatorHandle>,
    channel_emulators: ChannelEmulators,
    _scratch: Option<tempfile::TempDir>,
}

impl Application {
    /// Builds the gateway for a real org.
    pub async fn build(config: Config, listener: TcpListener) -> Result<Application, StartError> {
        Self::build_with_channels(config, listener, Vec::new()).await
    }

    /// Builds the gateway for a real org with channel adapters of the embedding program's own
    /// (plugins, see [`channels::Registry::register_plugin`]) besides the configured ones.
    pub async fn build_with_channels(
        config: Config,
        listener: TcpListener,
        plugins: Vec<Arc<dyn channels::Channel>>,
    ) -> Result<Application, StartError> {
        let store = Store::open(&config.database_url).await?;
        Self::assemble(config, listener, store, None, None, None, plugins).await
    }

    /// Builds the gateway with the built-in Salesforce emulator in-process, on a
    /// fresh SQLite file in a temporary directory. `scratch_db` says the caller
    /// wants that scratch database; `false` (a configured database) is refused,
    /// since the sandbox mints an every-scope token that `/v1/sandbox` hands to
    /// anyone. A listener not on loopback is refused unless `sandbox.allow_remote`.
    pub async fn build_sandbox(
        mut config: Config,
        listener: TcpListener,
        scratch_db: bool,
    ) -> Result<Application, StartError> {
        let addr = listener.local_addr().map_err(StartError::Listener)?;
        if !addr.ip().is_loopback() && !config.sandbox.allow_remote {
            return Err(StartError::SandboxRemote(addr));
        }
        if !scratch_db {
            return Err(StartError::SandboxDatabase);
        }
        let emulator_config = sf_emulator::EmulatorConfig::default();
        let app = emulator_config
            .connected_apps
            .first()
            .cloned()
            .ok_or_else(|| StartError::Salesforce("the emulator has no connected app".into()))?;
        let emulator_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(StartError::Emulator)?;
        let emulator = sf_emulator::spawn(emulator_config, emulator_listener)
            .await
            .map_err(StartError::Emulator)?;
        config.salesforce.login_url = emulator.url();
        config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
            client_id: app.client_id.clone(),
            client_secret: SecretString::from(app.client_secret.clone()),
        });
        // The sandbox is for local receivers: let chat reply to a loopback webhook, signed
        // with a fresh secret (unless one is configured) that GET /v1/sandbox hands out.
        let webhook_secret = match config.channels.get_mut("chat") {
            Some(channels::ChannelConfig::Chat(chat)) => {
                chat.allow_private_webhook_urls = true;
                if chat.webhook_secret.is_none() && chat.webhook_secret_file.is_none() {
                    chat.webhook_secret = Some(SecretString::from(new_webhook_secret()));
                }
                chat.webhook_secret
                    .as_ref()
                    .map(|secret| secret.expose_secret().to_owned())
            }
            _ => None,
        };
        // Rep-reply events (POST /salesforce/events) signed with a fresh secret, unless one is
        // configured; GET /v1/sandbox hands it out for the emulator's case webhook.
        if config.case_replies.webhook_secret.is_none()
            && config.case_replies.webhook_secret_file.is_none()
        {
            config.case_replies.webhook_secret =
                Some(SecretString::from(new_case_webhook_secret()));
        }
        let case_webhook_secret = config
            .case_replies
            .webhook_secret
            .as_ref()
            .map(|secret| secret.expose_secret().to_owned());
        // The emulator plays the shipped Apex: a rep's public comment or email at its
        // console is posted, signed, to this gateway's POST /salesforce/events.
        if config.case_replies.push
            && let Some(secret) = &case_webhook_secret
        {
            emulator
                .set_case_webhook(Some(sf_emulator::CaseWebhookConfig {
                    url: format!("http://{addr}/salesforce/events"),
                    hmac_secret: Some(secret.clone()),
                    jwt: None,
                    timeout_secs: 10,
                }))
                .map_err(StartError::Salesforce)?;
        }
        // Live messaging against the emulator's MIAW side (its default deployment).
        config.miaw.enabled = true;
        config.miaw.url = emulator.url();
        config.miaw.org_id = emulator.config().org_id.clone();
        config.miaw.deployment = SANDBOX_MIAW_DEPLOYMENT.into();
        let channel_emulators = start_channel_emulators(&mut config, addr).await?;
        // Secrets the sandbox stores live as long as it: a random key unless one is configured.
        config.secrets.ephemeral_fallback = true;
        let dir = tempfile::tempdir().map_err(StartError::Emulator)?;
        config.database_url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("handoff.db").display()
        );
        let scratch = Some(dir);
        let store = Store::open(&config.database_url).await?;
        let token = store
            .create_token("sandbox", &[Scope::Admin, Scope::Escalate, Scope::Read])
            .await?;
        let console_password = crate::console::session::random_secret();
        let console_hash =
            crate::console::password::hash(&console_password).map_err(StartError::Console)?;
        store
            .create_console_user(SANDBOX_CONSOLE_ADMIN, &console_hash, "admin")
            .await
            .map_err(|e| StartError::Console(e.to_string()))?;
        sandbox_salesforce_sign_in(&mut config, &emulator, &app, addr)?;
        let info = SandboxInfo {
            salesforce_url: emulator.url(),
            client_id: app.client_id,
            client_secret: app.client_secret,
            api_token: token.secret,
            webhook_secret,
            case_webhook_secret,
            twilio_emulator: channel_emulators.twilio_info(),
            whatsapp_emulator: channel_emulators.whatsapp_info(),
            console_username: SANDBOX_CONSOLE_ADMIN.into(),
            console_password,
        };
        let mut app = Self::assemble(
            config,
            listener,
            store,
            Some(info),
            Some(emulator),
            scratch,
            Vec::new(),
        )
        .await?;
        app.channel_emulators = channel_emulators;
        Ok(app)
    }

    async fn assemble(
        config: Config,
        listener: TcpListener,
        store: Store,
        sandbox: Option<SandboxInfo>,
        emulator: Option<sf_emulator::EmulatorHandle>,
        scratch: Option<tempfile::TempDir>,
        plugins: Vec<Arc<dyn channels::Channel>>,
    ) -> Result<Application, StartError> {
        // Before any work, so the first requests and Salesforce calls are recorded.
        crate::metrics::install();
        let keys = Arc::new(crate::secrets::Keyring::from_config(&config.secrets)?);
        check_sealed_rows(&store, &keys).await?;
        // A connection an admin made in the console ("Connect Salesforce") wins over
        // salesforce.credentials; either one is enough to start.
        let stored = match crate::console::connection::stored_credentials(&config, &store, &keys)
            .await
        {
            Ok(stored) => stored,
            Err(e) if config.salesforce.credentials.is_some() => {
                tracing::warn!(
                    error = %e,
                    "The Salesforce connection stored by the console cannot be read; using salesforce.credentials. Connect again in the console."
                );
                None
            }
            Err(e) => {
                return Err(StartError::Salesforce(format!(
                    "the Salesforce connection stored by the console cannot be read ({e}), and salesforce.credentials is not configured"
                )));
            }
        };
        let (login_url, credentials) = match stored {
            Some((login_url, credentials)) => {
                tracing::info!("using the Salesforce connection made in the console");
                (login_url, credentials)
            }
            None => match config.salesforce.credentials.clone() {
                Some(credentials) => (config.salesforce.login_url.clone(), credentials),
                // No credentials anywhere, but the console can connect the org: start, accept
                // escalations (they wait in the queue), and let an admin connect.
                None if matches!(
                    crate::console::connection::app(&config, &store, &keys).await,
                    Ok(Some(_))
                ) && config.console.enabled =>
                {
                    tracing::warn!(
                        "No Salesforce credentials yet: escalations are accepted and wait until an admin connects the org at /console/salesforce."
                    );
                    (
                        config.salesforce.login_url.clone(),
                        salesforce::Credentials::NotConnected,
                    )
                }
                None => return Err(StartError::NoCredentials),
            },
        };
        let client = salesforce::Client::new(salesforce::ClientConfig {
            login_url,
            api_version: config.salesforce.api_version.clone(),
            credentials,
            timeout: Duration::from_secs(config.salesforce.timeout_secs),
            max_concurrency: config.salesforce.max_concurrency,
        })
        .map_err(|e| StartError::Salesforce(e.to_string()))?;
        let inbound = Arc::new(
            crate::inbound::InboundSettings::from_config(&config).map_err(StartError::Inbound)?,
        );
        let config = Arc::new(config);
        let wake = Arc::new(Notify::new());
        let mut registry = channels::Registry::from_config(&config.channels)?;
        for plugin in plugins {
            registry.register_plugin(plugin)?;
        }
        let channels = Arc::new(registry);
        let gate = Arc::new(Gate::new(GateConfig {
            failure_threshold: config.salesforce.breaker_failure_threshold,
            open_for: Duration::from_secs(config.salesforce.breaker_open_secs),
            rate_limit_pause: Duration::from_secs(config.salesforce.rate_limit_pause_secs),
        }));
        let live = crate::live::Live::from_config(&config.miaw).map_err(StartError::Config)?;
        let push_auth = config
            .case_replies
            .push_auth()
            .map_err(StartError::CaseReplies)?;
        if config.case_replies.push && !push_auth.any() {
            tracing::warn!(
                "case_replies.push is on but neither webhook_secret nor jwt_certificates is set: POST /salesforce/events refuses every call."
            );
        }
        let replies = Arc::new(crate::replies::Replies::new(push_auth));
        if config.case_replies.poll {
            store.ensure_poller_job(config.worker.max_attempts).await?;
        }
        let streams_wake = Arc::new(Notify::new());
        let feed = crate::outbox::feed::Feed::new();
        let worker = Arc::new(Worker {
            store: store.clone(),
            client: client.clone(),
            gate: Arc::clone(&gate),
            config: Arc::clone(&config),
            wake: Arc::clone(&wake),
            channels: Arc::clone(&channels),
            clock: Arc::new(crate::jobs::clock::SystemClock),
            id: format!("w-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
            live: live.clone(),
            streams_wake: Arc::clone(&streams_wake),
            feed: feed.clone(),
            replies: Arc::clone(&replies),
        });
        let supervisor = live.clone().map(|live| {
            Arc::new(crate::live::supervisor::Supervisor::new(
                Arc::clone(&worker),
                live,
                Arc::clone(&streams_wake),
            ))
        });
        let session_streams =
            Arc::new(tokio::sync::Semaphore::new(config.http.max_session_streams));
        let state = AppState {
            store,
            config,
            channels,
            wake,
            gate,
            salesforce: client,
            sandbox: sandbox.map(Arc::new),
            live,
            feed,
            session_streams,
            replies,
            inbound,
            keys,
        };
        Ok(Application {
            listener,
            state,
            worker,
            supervisor,
            emulator,
            channel_emulators: ChannelEmulators::default(),
            _scratch: scratch,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, StartError> {
        self.listener.local_addr().map_err(StartError::Listener)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn sandbox(&self) -> Option<&SandboxInfo> {
        self.state.sandbox.as_deref()
    }

    pub fn emulator(&self) -> Option<&sf_emulator::EmulatorHandle> {
        self.emulator.as_ref()
    }

    /// The sandbox's SMS and WhatsApp provider emulators (none outside the sandbox).
    pub fn channel_emulators(&self) -> &ChannelEmulators {
        &self.channel_emulators
    }

    /// Serves HTTP and runs the worker until `shutdown` is cancelled: stops
    /// accepting, lets in-flight requests and jobs finish, then returns.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let router = http::router(self.state.clone());
        let worker_task = tokio::spawn(Arc::clone(&self.worker).run(shutdown.clone()));
        let supervisor_task = self
            .supervisor
            .clone()
            .map(|s| tokio::spawn(s.run(shutdown.clone())));
        let sweep_task = tokio::spawn(self.state.store.clone().sweep_idempotency_keys_until(
            self.state.config.idempotency.policy(),
            Duration::from_secs(300),
            shutdown.clone(),
        ));
        let retention_task = self.state.config.retention.enabled.then(|| {
            tokio::spawn(self.state.store.clone().sweep_retention_until(
                self.state.config.retention.policy(),
                Duration::from_secs(self.state.config.retention.interval_secs),
                shutdown.clone(),
            ))
        });
        let served = serve(
            self.listener,
            router,
            &self.state.config.http,
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        let _ = worker_task.await;
        if let Some(task) = supervisor_task {
            let _ = task.await;
        }
        let _ = sweep_task.await;
        if let Some(task) = retention_task {
            let _ = task.await;
        }
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
        served
    }

    /// Runs in the background; the returned handle stops it.
    pub fn spawn(self) -> Result<RunningApp, StartError> {
        let addr = self.local_addr()?;
        let state = self.state.clone();
        let emulator_url = self.emulator.as_ref().map(|e| e.url());
        let channel_emulators = self.channel_emulators.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(self.run(shutdown.clone()));
        Ok(RunningApp {
            addr,
            state,
            emulator_url,
            channel_emulators,
            shutdown,
            task,
        })
    }
}

/// "Sign in with Salesforce" out of the box in the sandbox: unless `[console.salesforce]` names
/// an app, the emulator's default app signs in its users holding the permission sets
/// `Handoff_Console_Admin` (admins) and `Handoff_Console_Operator` (read-only), and this
/// gateway's callback URLs (loopback address, `localhost`, `public_url`) are registered on it.
fn sandbox_salesforce_sign_in(
    config: &mut Config,
    emulator: &sf_emulator::EmulatorHandle,
    app: &sf_emulator::config::ConnectedApp,
    addr: SocketAddr,
) -> Result<(), StartError> {
    use sf_emulator::config::{CONSOLE_ADMIN_PERMISSION_SET, CONSOLE_OPERATOR_PERMISSION_SET};
    let sf = &mut config.console.salesforce;
    if sf.client_id.is_some() {
        return Ok(());
    }
    sf.client_id = Some(app.client_id.clone());
    sf.client_secret = Some(SecretString::from(app.client_secret.clone()));
    sf.login_url = Some(emulator.url());
    if sf.allowed_users.is_empty()
        && sf.allowed_profiles.is_empty()
        && sf.allowed_permission_sets.is_empty()
    {
        sf.allowed_permission_sets = vec![
            CONSOLE_ADMIN_PERMISSION_SET.to_owned(),
            CONSOLE_OPERATOR_PERMISSION_SET.to_owned(),
        ];
    }
    if sf.admin_users.is_empty()
        && sf.admin_profiles.is_empty()
        && sf.admin_permission_sets.is_empty()
    {
        sf.admin_permission_sets = vec![CONSOLE_ADMIN_PERMISSION_SET.to_owned()];
    }
    let host = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    let path = crate::console::oauth::CALLBACK_PATH;
    let mut callbacks = vec![
        format!("http://{}{path}", SocketAddr::new(host, addr.port())),
        format!("http://localhost:{}{path}", addr.port()),
    ];
    if let Some(public) = &config.public_url {
        callbacks.push(format!("{}{path}", public.trim_end_matches('/')));
    }
    for url in callbacks {
        emulator
            .add_callback_url(&app.client_id, &url)
            .map_err(StartError::Salesforce)?;
    }
    Ok(())
}

/// Tells the operator, at start, about stored secrets this keyring cannot open (their key is
/// not configured) or when no key is configured at all. Starting goes on either way: only
/// what needs those secrets fails, with the same advice.
async fn check_sealed_rows(
    store: &Store,
    keys: &crate::secrets::Keyring,
) -> Result<(), StartError> {
    let counts = store.secret_key_counts().await?;
    let missing: Vec<&str> = counts
        .keys()
        .map(String::as_str)
        .filter(|id| !keys.has_key(id))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            missing_key_ids = ?missing,
            "Stored secrets are sealed with keys that are not configured: add those keys back to [secrets] keys, or re-enter the credentials in the console. `handoff keys status` shows the details."
        );
    } else if keys.is_empty() {
        tracing::info!(
            "No [secrets] key is configured: the console cannot store credentials until one is (`handoff keys generate`, docs/security.md)."
        );
    }
    Ok(())
}

/// The sandbox's SMS and WhatsApp: for each of `[channels.sms]` and `[channels.whatsapp]`
/// that is on but names no provider account of its own, a provider emulator on loopback and
/// the table pointed at it. Their webhooks go to `public_url`, which is set to this
/// listener's loopback address when not configured (providers sign that URL).
async fn start_channel_emulators(
    config: &mut Config,
    addr: SocketAddr,
) -> Result<ChannelEmulators, StartError> {
    let sms = matches!(
        config.channels.get("sms"),
        Some(channels::ChannelConfig::Sms(c)) if sandbox_channels::sms_unconfigured(c)
    );
    let whatsapp = matches!(
        config.channels.get("whatsapp"),
        Some(channels::ChannelConfig::Whatsapp(c)) if sandbox_channels::whatsapp_unconfigured(c)
    );
    if !sms && !whatsapp {
        return Ok(ChannelEmulators::default());
    }
    let public_url = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = if addr.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                addr.ip()
            };
            let url = format!("http://{}", SocketAddr::new(host, addr.port()));
            config.public_url = Some(url.clone());
            url
        }
    };
    let mut emulators = ChannelEmulators::default();
    if sms {
        let twilio = ChannelEmulators::start_twilio(&public_url)
            .await
            .map_err(StartError::ChannelEmulators)?;
        if let Some(channels::ChannelConfig::Sms(c)) = config.channels.get_mut("sms") {
            sandbox_channels::point_sms_at(c, &twilio);
        }
        emulators.twilio = Some(twilio);
    }
    if whatsapp {
        let wa = ChannelEmulators::start_whatsapp(&public_url)
            .await
            .map_err(StartError::ChannelEmulators)?;
        if let Some(channels::ChannelConfig::Whatsapp(c)) = config.channels.get_mut("whatsapp") {
            sandbox_channels::point_whatsapp_at(c, &wa);
        }
        emulators.whatsapp = Some(wa);
    }
    Ok(emulators)
}

/// Accepts connections until `shutdown`, then lets each finish its request.
/// hyper closes a connection whose request headers have not all arrived within
/// `header_read_timeout_secs`; every request body gets a deadline of
/// `body_read_timeout_secs` from its headers (408 after it).
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    http: &HttpConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyDeadlineLayer::new(Duration::from_secs(
            http.body_read_timeout_secs,
        )))
        .service(router);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_read_timeout_secs));
    builder.http2().timer(TokioTimer::new());
    let tracker = TaskTracker::new();
    loop {
        let (stream, _peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "Connection ended with an error.");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// A gateway running in the background.
pub struct RunningApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub emulator_url: Option<String>,
    /// The sandbox's SMS and WhatsApp provider emulators (none outside the sandbox).
    pub channel_emulators: ChannelEmulators,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningApp {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop: waits for in-flight work.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}
