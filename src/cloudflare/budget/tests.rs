//! The limiter's logic on tokio's paused clock: times are exact, nothing
//! sleeps for real.

use std::sync::Arc;

use reqwest::header::HeaderValue;

use super::*;

const MAX_WAIT: Duration = Duration::from_secs(300);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// When each of `n` acquires in a row returned, from `start`.
async fn times(budget: &ApiBudget, n: usize) -> Vec<Duration> {
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..n {
        budget.acquire().await;
        out.push(start.elapsed());
    }
    out
}

fn ratelimit(remaining: u64, quota: u64, reset: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    let limit = format!("\"default\";r={remaining};t={reset}");
    let policy = format!("\"default\";q={quota};w=300");
    h.insert("ratelimit", HeaderValue::from_str(&limit).unwrap());
    h.insert("ratelimit-policy", HeaderValue::from_str(&policy).unwrap());
    h
}

#[tokio::test(start_paused = true)]
async fn a_burst_goes_at_once_then_one_per_interval() {
    let budget = ApiBudget::new(60, 3, MAX_WAIT);
    let t = times(&budget, 6).await;
    assert_eq!(t, [0.0, 0.0, 0.0, 1.0, 2.0, 3.0].map(secs));
}

#[tokio::test(start_paused = true)]
async fn an_idle_process_earns_back_its_burst_and_no_more() {
    let budget = ApiBudget::new(60, 2, MAX_WAIT);
    times(&budget, 4).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let t = times(&budget, 3).await;
    assert_eq!(t, [0.0, 0.0, 1.0].map(secs));
}

#[tokio::test(start_paused = true)]
async fn zero_per_minute_turns_pacing_off() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    let t = times(&budget, 1000).await;
    assert!(t.iter().all(Duration::is_zero));
}

#[tokio::test(start_paused = true)]
async fn concurrent_waiters_get_slots_in_turn() {
    let budget = Arc::new(ApiBudget::new(120, 1, MAX_WAIT));
    let start = Instant::now();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                budget.acquire().await;
                start.elapsed()
            })
        })
        .collect();
    let mut t = Vec::new();
    for task in tasks {
        t.push(task.await.unwrap());
    }
    t.sort();
    assert_eq!(t, [0.0, 0.5, 1.0, 1.5, 2.0].map(secs));
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_every_request_for_its_retry_after() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    budget.observe(429, &HeaderMap::new(), Some(secs(7.0)));
    let t = times(&budget, 3).await;
    assert_eq!(t, [7.0, 7.0, 7.0].map(secs));
}

#[tokio::test(start_paused = true)]
async fn a_pause_reaches_requests_already_waiting() {
    let budget = Arc::new(ApiBudget::new(60, 1, MAX_WAIT));
    let start = Instant::now();
    budget.acquire().await;
    // The next permit is due at 1 s; a 429 at 0.5 s pauses us until 3.5 s.
    let waiter = {
        let budget = Arc::clone(&budget);
        tokio::spawn(async move {
            budget.acquire().await;
            start.elapsed()
        })
    };
    tokio::time::sleep(secs(0.5)).await;
    budget.observe(429, &HeaderMap::new(), Some(secs(3.0)));
    assert!(waiter.await.unwrap() >= secs(3.5));
}

#[tokio::test(start_paused = true)]
async fn pauses_only_grow_and_are_capped() {
    let budget = ApiBudget::new(0, 1, Duration::from_secs(10));
    budget.observe(429, &HeaderMap::new(), Some(secs(5.0)));
    budget.observe(429, &HeaderMap::new(), Some(secs(2.0)));
    assert_eq!(times(&budget, 1).await, [secs(5.0)]);
    budget.observe(429, &HeaderMap::new(), Some(secs(3600.0)));
    assert_eq!(times(&budget, 1).await, [secs(10.0)], "capped at max_wait");
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_waits_for_the_reset() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    budget.observe(429, &ratelimit(0, 100, 4), None);
    assert_eq!(times(&budget, 1).await, [secs(4.0)]);
}

#[tokio::test(start_paused = true)]
async fn other_statuses_never_pause() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    budget.observe(503, &HeaderMap::new(), Some(secs(5.0)));
    assert_eq!(times(&budget, 1).await, [Duration::ZERO]);
}

#[tokio::test(start_paused = true)]
async fn a_low_fleet_budget_is_spread_until_the_reset() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    // 5 of 100 left (under 10%), the window resets in 10 s: 2.5 s apart.
    budget.observe(200, &ratelimit(5, 100, 10), None);
    let t = times(&budget, 4).await;
    assert_eq!(t, [0.0, 2.5, 5.0, 7.5].map(secs));
}

#[tokio::test(start_paused = true)]
async fn an_empty_fleet_budget_waits_for_the_reset_then_runs_free() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    budget.observe(200, &ratelimit(0, 100, 6), None);
    let t = times(&budget, 3).await;
    assert_eq!(t, [6.0, 6.0, 6.0].map(secs));
}

#[tokio::test(start_paused = true)]
async fn a_healthy_fleet_budget_costs_nothing() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    budget.observe(200, &ratelimit(50, 100, 10), None);
    assert!(times(&budget, 40).await.iter().all(Duration::is_zero));
}

#[tokio::test(start_paused = true)]
async fn requests_between_answers_count_down_the_budget() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    // 12 of 100 left: not low yet, but the 3rd request without an answer
    // leaves 9 (under 10%), so pacing starts without waiting for a header.
    budget.observe(200, &ratelimit(12, 100, 100), None);
    let t = times(&budget, 5).await;
    assert_eq!(&t[..3], &[Duration::ZERO; 3]);
    assert!(t[3] > Duration::ZERO, "{t:?}");
}

#[tokio::test(start_paused = true)]
async fn a_late_answer_does_not_raise_the_count_within_a_window() {
    let budget = ApiBudget::new(0, 1, MAX_WAIT);
    // 3 of 10 left: not low, so three requests go at once.
    budget.observe(200, &ratelimit(3, 10, 10), None);
    assert!(times(&budget, 3).await.iter().all(Duration::is_zero));
    // An answer to a request sent before those three still says 2 left.
    budget.observe(200, &ratelimit(2, 10, 10), None);
    assert_eq!(
        times(&budget, 1).await,
        [secs(10.0)],
        "none left: wait for the reset"
    );
    // A new window (its reset later by a whole window) starts afresh.
    budget.observe(200, &ratelimit(99, 100, 10), None);
    assert!(times(&budget, 5).await.iter().all(Duration::is_zero));
}

#[tokio::test(start_paused = true)]
async fn fleet_pacing_and_local_pacing_take_the_later_slot() {
    // Locally one a second; the fleet asks for 2.5 s apart: the fleet wins.
    let budget = ApiBudget::new(60, 1, MAX_WAIT);
    budget.observe(200, &ratelimit(5, 100, 10), None);
    let t = times(&budget, 3).await;
    assert_eq!(t, [0.0, 2.5, 5.0].map(secs));
}

#[test]
fn wait_reasons_are_the_metric_labels() {
    assert_eq!(Why::Local.label(), "local");
    assert_eq!(Why::Budget.label(), "budget");
    assert_eq!(Why::Paused.label(), "paused");
}
