//! The application as a value: build it from a config and a listener, then run
//! it until a shutdown signal. `main`, the demo, the benchmarks and the tests all
//! start the gateway this way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::escalation::gate::{Gate, GateConfig};
use crate::escalation::worker::Worker;
use crate::http::{self, AppState, SandboxInfo};
use crate::store::{Scope, Store};

/// Why the gateway could not start, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot open the database: {0}. Check database_url (HANDOFF_DATABASE_URL) and that the server is reachable."
    )]
    Database(#[from] sea_orm::DbErr),
    #[error(
        "salesforce.credentials is not configured. Set it in the config file (see deploy/handoff.example.toml) or via HANDOFF_SALESFORCE__CREDENTIALS__* — or try `handoff serve --sandbox` to run against the built-in emulator."
    )]
    NoCredentials,
    #[error("cannot build the Salesforce client: {0}")]
    Salesforce(String),
    #[error("cannot start the built-in Salesforce emulator: {0}")]
    Emulator(std::io::Error),
    #[error("cannot read the listener address: {0}")]
    Listener(std::io::Error),
    #[error(
        "channel configuration: {0}. Fix that setting in the config file or its HANDOFF_CHANNELS__* variable."
    )]
    Channels(#[from] channels::ChannelError),
}

/// A built, not yet running, gateway.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: Arc<Worker>,
    emulator: Option<sf_emulator::EmulatorHandle>,
    _scratch: Option<tempfile::TempDir>,
}

impl Application {
    /// Builds the gateway for a real org.
    pub async fn build(config: Config, listener: TcpListener) -> Result<Application, StartError> {
        let store = Store::open(&config.database_url).await?;
        Self::assemble(config, listener, store, None, None, None).await
    }

    /// Builds the gateway with the built-in Salesforce emulator in-process. With
    /// `scratch_db`, the database is a fresh SQLite file in a temporary directory.
    pub async fn build_sandbox(
        mut config: Config,
        listener: TcpListener,
        scratch_db: bool,
    ) -> Result<Application, StartError> {
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
        // The sandbox is for local receivers: let chat reply to a loopback webhook.
        if let Some(channels::ChannelConfig::Chat(chat)) = config.channels.get_mut("chat") {
            chat.allow_private_webhook_urls = true;
        }
        let scratch = if scratch_db {
            let dir = tempfile::tempdir().map_err(StartError::Emulator)?;
            config.database_url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("handoff.db").display()
            );
            Some(dir)
        } else {
            None
        };
        let store = Store::open(&config.database_url).await?;
        let token = store
            .create_token("sandbox", &[Scope::Admin, Scope::Escalate, Scope::Read])
            .await?;
        let info = SandboxInfo {
            salesforce_url: emulator.url(),
            client_id: app.client_id,
            client_secret: app.client_secret,
            api_token: token.secret,
        };
        Self::assemble(config, listener, store, Some(info), Some(emulator), scratch).await
    }

    async fn assemble(
        config: Config,
        listener: TcpListener,
        store: Store,
        sandbox: Option<SandboxInfo>,
        emulator: Option<sf_emulator::EmulatorHandle>,
        scratch: Option<tempfile::TempDir>,
    ) -> Result<Application, StartError> {
        let credentials = config
            .salesforce
            .credentials
            .clone()
            .ok_or(StartError::NoCredentials)?;
        let client = salesforce::Client::new(salesforce::ClientConfig {
            login_url: config.salesforce.login_url.clone(),
            api_version: config.salesforce.api_version.clone(),
            credentials,
            timeout: Duration::from_secs(config.salesforce.timeout_secs),
            max_concurrency: config.salesforce.max_concurrency,
        })
        .map_err(|e| StartError::Salesforce(e.to_string()))?;
        let config = Arc::new(config);
        let wake = Arc::new(Notify::new());
        let channels = Arc::new(channels::Registry::from_config(&config.channels)?);
        let gate = Arc::new(Gate::new(GateConfig {
            failure_threshold: config.salesforce.breaker_failure_threshold,
            open_for: Duration::from_secs(config.salesforce.breaker_open_secs),
            rate_limit_pause: Duration::from_secs(config.salesforce.rate_limit_pause_secs),
        }));
        let worker = Arc::new(Worker {
            store: store.clone(),
            client: client.clone(),
            gate: Arc::clone(&gate),
            config: Arc::clone(&config),
            wake: Arc::clone(&wake),
            id: format!("w-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        });
        let state = AppState {
            store,
            config,
            channels,
            wake,
            gate,
            salesforce: client,
            sandbox: sandbox.map(Arc::new),
        };
        Ok(Application {
            listener,
            state,
            worker,
            emulator,
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

    /// Serves HTTP and runs the worker until `shutdown` is cancelled: stops
    /// accepting, lets in-flight requests and jobs finish, then returns.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let router = http::router(self.state.clone());
        let worker_task = tokio::spawn(Arc::clone(&self.worker).run(shutdown.clone()));
        let sweep_task = tokio::spawn(self.state.store.clone().sweep_idempotency_keys_until(
            self.state.config.idempotency.policy(),
            Duration::from_secs(300),
            shutdown.clone(),
        ));
        let server_shutdown = shutdown.clone();
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
            .await;
        shutdown.cancel();
        let _ = worker_task.await;
        let _ = sweep_task.await;
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
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(self.run(shutdown.clone()));
        Ok(RunningApp {
            addr,
            state,
            emulator_url,
            shutdown,
            task,
        })
    }
}

/// A gateway running in the background.
pub struct RunningApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub emulator_url: Option<String>,
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
