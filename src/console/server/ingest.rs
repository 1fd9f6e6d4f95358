//! Feeding the console's window: live events, the recent past from the
//! events log, and queue depths, each in a task that lives as long as the
//! server.
//!
//! Live events come through the console's own private queue (`deploy.#`).
//! Each time it (re)subscribes, a second task reads the events log from
//! `console.replay` ago (or from just before the last event seen, after a
//! lost connection), so the page starts with the last hour and a broker
//! hiccup leaves no hole. The private queue is bound first, so everything
//! published after that reaches it; the replay stops once it meets an
//! event the live feed already delivered (from there on the live feed has
//! it all) or once the log has nothing more to give. The window drops the
//! events both delivered.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{AppState, Update};
use crate::config::AmqpSettings;
use crate::console::event::FeedEvent;
use crate::console::feed::{EventFeed, FeedError};

/// A replay that waited this long for the next event has caught up.
const CAUGHT_UP_AFTER: Duration = Duration::from_secs(2);
/// How far before the last event seen a replay after a reconnect starts
/// (clocks of workers and console differ a little).
const RESUME_MARGIN: chrono::Duration = chrono::Duration::seconds(30);
/// Ceiling of the pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Subscribes, replays and reads live events until `shutdown`, reconnecting
/// with a growing pause when the broker goes away. A missing events log is
/// declared kept for `log_max_age` (`events.log_max_age`), as the worker
/// declares it.
pub async fn events(
    state: AppState,
    amqp: AmqpSettings,
    log_max_age: Duration,
    replay: Duration,
    shutdown: CancellationToken,
) {
    let mut since =
        Utc::now() - chrono::Duration::from_std(replay).unwrap_or(chrono::Duration::hours(1));
    let mut backoff = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        match EventFeed::live(&amqp, "deploy.#").await {
            Ok(live) => {
                backoff = Duration::from_millis(500);
                state.set_connected(true);
                let replaying = CancellationToken::new();
                tokio::spawn(replay_log(
                    state.clone(),
                    amqp.clone(),
                    log_max_age,
                    since,
                    replaying.clone(),
                ));
                let ended = consume(&state, live, &shutdown).await;
                replaying.cancel();
                state.set_connected(false);
                if let Err(error) = ended {
                    tracing::warn!(%error, "console: lost the events; reconnecting");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "console: cannot subscribe to the events; retrying")
            }
        }
        if let Some(last) = state.last_event_time() {
            since = last - RESUME_MARGIN;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Live events into the window until the feed ends or `shutdown`.
async fn consume(
    state: &AppState,
    mut live: EventFeed,
    shutdown: &CancellationToken,
) -> Result<(), FeedError> {
    let result = loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            next = live.next() => next,
        };
        match next {
            Ok(event) => {
                state.ingest(event);
            }
            Err(FeedError::Unreadable {
                routing_key,
                reason,
            }) => {
                tracing::warn!(%routing_key, %reason, "console: skipped an unreadable event");
            }
            Err(error) => break Err(error),
        }
    };
    live.close().await;
    result
}

/// The events log from `since` into the window, until it meets the live
/// feed, catches up, or `stop`.
async fn replay_log(
    state: AppState,
    amqp: AmqpSettings,
    log_max_age: Duration,
    since: DateTime<Utc>,
    stop: CancellationToken,
) {
    let mut feed = match EventFeed::replay(&amqp, log_max_age, since).await {
        Ok((feed, _)) => feed,
        Err(error) => {
            tracing::warn!(%error, "console: cannot read the events log; showing live events only");
            return;
        }
    };
    let mut replayed: HashSet<(String, Option<DateTime<Utc>>)> = HashSet::new();
    let mut count = 0usize;
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            next = tokio::time::timeout(CAUGHT_UP_AFTER, feed.next()) => next,
        };
        let event: FeedEvent = match next {
            Err(_) => break,
            Ok(Ok(event)) => event,
            Ok(Err(FeedError::Unreadable { .. })) => continue,
            Ok(Err(error)) => {
                tracing::warn!(%error, "console: the events log replay stopped");
                break;
            }
        };
        if !event.routing_key.starts_with("deploy.") {
            continue;
        }
        let key = (event.id.clone(), event.time);
        if state.ingest(event) {
            replayed.insert(key);
            count += 1;
        } else if !replayed.contains(&key) {
            // The live feed delivered it: it has everything from here on.
            break;
        }
    }
    feed.close().await;
    tracing::info!(events = count, %since, "console: replayed the events log");
}

/// Queue depths every `every`, until `shutdown`.
pub async fn queues(state: AppState, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let queues = state.management.queues().await;
        state.set_queues(queues);
    }
}

/// The throughput chart, sent when outcomes changed it (at most once a
/// second) and each minute as the hour slides on.
pub async fn throughput(state: AppState, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut since_sent = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        since_sent += 1;
        if state.take_outcomes_changed() || since_sent >= 60 {
            since_sent = 0;
            let chart = state.throughput();
            state.broadcast(Update::Throughput(chart));
        }
    }
}
