//! The console's JSON API and its event stream (see the route table in
//! [`super`]). Errors answer `{"error": "..."}` with a status that says
//! whose fault it is: 404 for what is not there, 502 when the broker failed.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{AppState, Update};
use crate::console::dlq::{Action, DeadLetters, ParkedJob, Selection};
use crate::console::window::JobQuery;

/// Parked jobs one page lists at most.
const DLQ_PAGE: usize = 500;

fn failure(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

/// Filters of the outcomes list, as the page sends them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Filters {
    namespace: Option<String>,
    script: Option<String>,
    code: Option<String>,
}

/// `GET /api/state`: everything the page draws, in one answer.
pub async fn state(State(state): State<AppState>, Query(filters): Query<Filters>) -> Response {
    let in_flight = state.read(|w| w.jobs(&JobQuery::default()));
    let finished = JobQuery {
        finished: true,
        namespace: filters.namespace,
        script: filters.script,
        code: filters.code,
        limit: None,
    };
    let recent = state.read(|w| w.jobs(&finished));
    Json(json!({
        "about": state.about(),
        "in_flight": in_flight,
        "recent": recent,
        "throughput": state.throughput(),
        "queues": state.queues(),
    }))
    .into_response()
}

/// `GET /api/jobs`: a listing, as [`JobQuery`] says.
pub async fn jobs(State(state): State<AppState>, Query(query): Query<JobQuery>) -> Response {
    Json(state.read(|w| w.jobs(&query))).into_response()
}

/// `GET /api/jobs/{id}`: one job and its events, oldest first.
pub async fn job(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let (job, events) = state.read(|w| (w.job(&id), w.timeline(&id)));
    match job {
        Some(job) => Json(json!({"job": job, "events": events})).into_response(),
        None => failure(
            StatusCode::NOT_FOUND,
            format!("job {id} is not among the console's recent events"),
        ),
    }
}

fn to_sse(update: Update) -> Event {
    let event = match &update {
        Update::Job(job) => Event::default().event("job").json_data(job),
        Update::Throughput(chart) => Event::default().event("throughput").json_data(chart),
        Update::Queues(queues) => Event::default().event("queues").json_data(queues),
        Update::Dlq => Ok(Event::default().event("dlq").data("{}")),
        Update::Broker { connected } => Event::default()
            .event("broker")
            .json_data(json!({"connected": connected})),
    };
    event.unwrap_or_else(|_| Event::default().event("resync").data("{}"))
}

/// `GET /api/stream`: every change, as it happens. A page that falls
/// behind gets `resync` and reloads its state; the stream ends with the
/// server.
pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let updates = state.updates.subscribe();
    let stream = futures::stream::unfold(updates, |mut updates| async move {
        let event = match updates.recv().await {
            Ok(update) => to_sse(update),
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), updates))
    })
    .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The parked jobs, for the page.
#[derive(Debug, Serialize)]
struct Parked {
    queue: String,
    jobs: Vec<ParkedJob>,
    more: bool,
}

/// `GET /api/dlq`: the parked jobs (read and put back; see `console::dlq`).
pub async fn dead_letters(State(state): State<AppState>) -> Response {
    let listed = async {
        let dlq = DeadLetters::open(&state.amqp).await?;
        let sweep = dlq.list(DLQ_PAGE).await;
        dlq.close().await;
        sweep
    };
    match listed.await {
        Ok(sweep) => Json(Parked {
            queue: state.amqp.dead_letter_queue.clone(),
            jobs: sweep.kept,
            more: sweep.more,
        })
        .into_response(),
        Err(error) => failure(StatusCode::BAD_GATEWAY, error),
    }
}

/// What a page asks to requeue or purge.
#[derive(Debug, Deserialize)]
pub struct Ids {
    ids: Vec<String>,
}

async fn act(state: &AppState, ids: Vec<String>, action: Action) -> Response {
    if ids.is_empty() {
        return failure(StatusCode::BAD_REQUEST, "no ids given");
    }
    let selection = Selection {
        ids,
        ..Selection::default()
    };
    let swept = async {
        let dlq = DeadLetters::open(&state.amqp).await?;
        let sweep = dlq
            .sweep(&selection, action, crate::console::dlq::DEFAULT_LIMIT)
            .await;
        dlq.close().await;
        sweep
    };
    match swept.await {
        Ok(sweep) => {
            state.broadcast(Update::Dlq);
            let done: Vec<&str> = sweep.acted.iter().map(|job| job.id.as_str()).collect();
            Json(json!({"done": done, "left": sweep.kept.len()})).into_response()
        }
        Err(error) => failure(StatusCode::BAD_GATEWAY, error),
    }
}

/// `POST /api/dlq/requeue`.
pub async fn requeue(State(state): State<AppState>, Json(body): Json<Ids>) -> Response {
    act(&state, body.ids, Action::Requeue).await
}

/// `POST /api/dlq/purge`.
pub async fn purge(State(state): State<AppState>, Json(body): Json<Ids>) -> Response {
    act(&state, body.ids, Action::Purge).await
}
