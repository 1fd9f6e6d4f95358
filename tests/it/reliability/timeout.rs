//! `worker.job_timeout`: a deploy stalled past it fails as a retryable
//! `internal` at the step it was in, and goes through the job-level
//! retries like any outage.

use std::time::Duration;

use serde_json::json;

use super::{app, events_until_terminal, stop, timeline};
use crate::helpers::sim::add_fault;

#[tokio::test]
async fn a_deploy_stalled_past_the_job_timeout_is_retried_and_succeeds() {
    let mut app = app(|s| {
        s.worker.job_timeout = Duration::from_secs(1);
        s.worker.retry_delays = vec![Duration::from_millis(300)];
    })
    .await;
    app.bucket.put("t/index.html", b"<p>t</p>".to_vec()).await;
    // Well within the request timeout (120 s): only the job timeout ends it.
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "latency", "ms": 10_000, "count": 1}),
    )
    .await;
    app.publish(&app.job("slow-1", "slow", "t/")).await;
    let events = events_until_terminal(&mut app).await;
    assert_eq!(
        timeline(&events),
        [
            "deploy.started 1",
            "deploy.retrying 1",
            "deploy.started 2",
            "deploy.succeeded 2"
        ]
    );
    let error = &events[1].data()["error"];
    assert_eq!(
        *error,
        json!({"code": "internal", "step": "session", "retryable": true,
               "message": "session: job timed out after 1s"})
    );
    stop(app).await;
}
