//! The console's HTTP server: the page, a JSON API, and a server-sent event
//! stream that pushes every change to the open pages.
//!
//! State lives in one [`AppState`]: the event [`Window`], the last queue
//! depths, and a broadcast channel each page's stream subscribes to. Three
//! tasks keep it current ([`ingest`]): events (live and replayed), queue
//! depths, and the throughput chart. Everything stops with one
//! cancellation token.
//!
//! ```text
//! GET  /                     the page (with its CSRF token)
//! GET  /static/app.js|css    its script and style
//! GET  /api/state            in flight, recent outcomes, chart, queues
//! GET  /api/jobs             ?finished=true&namespace=&script=&code=&limit=
//! GET  /api/jobs/{id}        one job and its timeline of events
//! GET  /api/stream           server-sent events: job, throughput, queues, dlq
//! GET  /api/dlq              the parked jobs
//! POST /api/dlq/requeue      {"ids": [...]}: requeue (same-origin + CSRF)
//! POST /api/dlq/purge        {"ids": [...]}: delete (same-origin + CSRF)
//! ```

mod api;
mod auth;
mod ingest;
mod page;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::auth::Auth;
use super::event::FeedEvent;
use super::jobs::JobView;
use super::management::{Management, Queues};
use super::window::{Throughput, Window};
use crate::config::{AmqpSettings, Settings};

/// Updates a page's stream carries; a page that falls this far behind is
/// told to reload its state instead.
const UPDATE_BUFFER: usize = 1024;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(
        "console.listen is {listen}, not a loopback address, and console.token is not set: \
         anyone who can reach it could requeue and purge jobs. Set console.token \
         (WFP__CONSOLE__TOKEN) or listen on 127.0.0.1"
    )]
    Exposed { listen: SocketAddr },
    #[error("console: cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A change the open pages hear about.
#[derive(Debug, Clone)]
pub enum Update {
    /// Boxed, so the broadcast buffer's slots stay small.
    Job(Box<JobView>),
    Throughput(Throughput),
    Queues(Queues),
    /// The dead-letter queue changed (a requeue or purge from a page).
    Dlq,
    /// The console's own subscription to the events came up or went down.
    Broker {
        connected: bool,
    },
}

/// What the handlers and the feeding tasks share.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    window: RwLock<Window>,
    queues: RwLock<Option<Queues>>,
    last_event: Mutex<Option<DateTime<Utc>>>,
    outcomes_changed: AtomicBool,
    connected: AtomicBool,
    updates: broadcast::Sender<Update>,
    management: Management,
    amqp: AmqpSettings,
    auth: Auth,
    shutdown: CancellationToken,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the page shows about the console itself.
#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub events_exchange: String,
    pub jobs_exchange: String,
    pub dead_letter_queue: String,
    pub window_capacity: usize,
    pub connected: bool,
}

impl AppState {
    fn new(settings: &Settings, shutdown: CancellationToken) -> Self {
        let (updates, _) = broadcast::channel(UPDATE_BUFFER);
        Self(Arc::new(Shared {
            window: RwLock::new(Window::new(settings.console.window)),
            queues: RwLock::new(None),
            last_event: Mutex::new(None),
            outcomes_changed: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            updates,
            management: Management::new(&settings.console, &settings.amqp),
            amqp: settings.amqp.clone(),
            auth: Auth::new(settings.console.token.clone()),
            shutdown,
        }))
    }

    /// Adds an event to the window and tells the pages; `false` for an
    /// event the window already held.
    pub fn ingest(&self, event: FeedEvent) -> bool {
        let now = Utc::now();
        let terminal = event.is_terminal();
        let at = event.time.unwrap_or(now);
        let view = match self.window.write() {
            Ok(mut window) => window.insert(event, now),
            Err(poisoned) => poisoned.into_inner().insert(event, now),
        };
        let Some(view) = view else {
            return false;
        };
        if let Ok(mut last) = self.last_event.lock() {
            *last = Some(last.map_or(at, |l| l.max(at)));
        }
        if terminal {
            self.outcomes_changed.store(true, Ordering::Relaxed);
        }
        self.broadcast(Update::Job(Box::new(view)));
        true
    }

    /// Reads the window (a poisoned lock still holds good data: every
    /// write is one insert).
    fn read<T>(&self, f: impl FnOnce(&Window) -> T) -> T {
        match self.window.read() {
            Ok(window) => f(&window),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    pub fn broadcast(&self, update: Update) {
        // No page open is no error.
        let _ = self.updates.send(update);
    }

    fn last_event_time(&self) -> Option<DateTime<Utc>> {
        self.last_event.lock().ok().and_then(|l| *l)
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
        self.broadcast(Update::Broker { connected });
    }

    fn take_outcomes_changed(&self) -> bool {
        self.outcomes_changed.swap(false, Ordering::Relaxed)
    }

    fn throughput(&self) -> Throughput {
        self.read(|w| w.throughput(Utc::now()))
    }

    fn set_queues(&self, queues: Queues) {
        if let Ok(mut slot) = self.queues.write() {
            *slot = Some(queues.clone());
        }
        self.broadcast(Update::Queues(queues));
    }

    fn queues(&self) -> Option<Queues> {
        self.queues.read().ok().and_then(|q| q.clone())
    }

    fn about(&self) -> About {
        let window_capacity = self.read(|w| w.capacity());
        About {
            events_exchange: self.amqp.events_exchange.clone(),
            jobs_exchange: self.amqp.jobs_exchange.clone(),
            dead_letter_queue: self.amqp.dead_letter_queue.clone(),
            window_capacity,
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}

fn router(state: AppState) -> Router {
    let actions = Router::new()
        .route("/api/dlq/requeue", post(api::requeue))
        .route("/api/dlq/purge", post(api::purge))
        .route_layer(from_fn_with_state(state.clone(), auth::same_origin_only));
    Router::new()
        .route("/", get(page::index))
        .route("/static/app.js", get(page::script))
        .route("/static/app.css", get(page::style))
        .route("/api/state", get(api::state))
        .route("/api/jobs", get(api::jobs))
        .route("/api/jobs/{id}", get(api::job))
        .route("/api/stream", get(api::stream))
        .route("/api/dlq", get(api::dead_letters))
        .merge(actions)
        .layer(from_fn_with_state(state.clone(), auth::require_token))
        .layer(axum::middleware::from_fn(page::security_headers))
        .with_state(state)
}

/// Binds `listen` (port 0 picks one) and returns the bound address and the
/// future that serves the console, and feeds it, until `shutdown`.
///
/// Refuses an address other than loopback unless `console.token` is set.
pub async fn bind(
    settings: &Settings,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, impl Future<Output = ()> + use<>), ConsoleError> {
    let state = AppState::new(settings, shutdown.clone());
    if !state.auth.required() && !listen.ip().is_loopback() {
        return Err(ConsoleError::Exposed { listen });
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ConsoleError::Bind {
            addr: listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ConsoleError::Bind {
        addr: listen,
        source,
    })?;
    let console = settings.console.clone();
    let amqp = settings.amqp.clone();
    let log_max_age = settings.events.log_max_age;
    let serve = async move {
        tokio::spawn(ingest::events(
            state.clone(),
            amqp,
            log_max_age,
            console.replay,
            shutdown.clone(),
        ));
        tokio::spawn(ingest::queues(
            state.clone(),
            console.queue_poll,
            shutdown.clone(),
        ));
        tokio::spawn(ingest::throughput(state.clone(), shutdown.clone()));
        let app = router(state);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "console server stopped");
        }
    };
    Ok((bound, serve))
}
