//! The API budget respected by two processes sharing a token: two workers,
//! each with its own Cloudflare client and limiter, deploy a burst of jobs
//! in parallel against one simulator enforcing a per-token budget that the
//! burst would exceed unpaced; the simulator refuses nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use wfp_deployer::sim::{RateLimitConfig, SimConfig, parse_rate_limit};

use crate::helpers::amqp::start_worker;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::{requests, stats};

/// The simulator's budget for the token: 40 calls per 2 s window.
const BUDGET: &str = "40/2s";
const QUOTA: usize = 40;
const JOBS: usize = 24;

#[tokio::test]
async fn the_api_budget_is_respected_by_two_processes_sharing_a_token() {
    let mut sim = SimConfig::for_tests();
    sim.rate_limit = RateLimitConfig {
        limit: Some(parse_rate_limit(BUDGET).unwrap()),
        penalty: Duration::from_secs(60),
    };
    // Sized as the README says for N = 2 workers: each at most its burst
    // (4) plus 4 a second, so 2 × (4 + 8) = 24 calls per 2 s window at
    // most, with room left for requests delayed on their way.
    let mut app = TestApp::spawn_with(S3Server::Moto, sim, |s| {
        s.worker.concurrency = 4;
        s.cloudflare.max_requests_per_minute = 240;
        s.cloudflare.request_burst = 4;
        s.retry.max_retry_after = Duration::from_secs(5);
    })
    .await;
    let mut second = app.settings.clone();
    second.worker.instance = format!("{}-b", app.settings.worker.instance);
    let pipeline = wfp_deployer::startup::build_pipeline(&second)
        .await
        .unwrap_or_else(|e| panic!("building the second pipeline: {e}"));
    let worker = start_worker(&second, Arc::new(pipeline)).await;

    // A file of its own per job: a session, an upload and a PUT each.
    app.bucket
        .put_many((0..JOBS).map(|i| (format!("b{i}/index.html"), format!("<p>{i}</p>"))))
        .await;
    for i in 0..JOBS {
        let job = app.job(
            &format!("budget-{i}"),
            &format!("site-{i}"),
            &format!("b{i}/"),
        );
        app.publish(&job).await;
    }
    let mut sources = BTreeSet::new();
    for _ in 0..JOBS {
        let event = app.terminal_event().await;
        assert_eq!(event.json["type"], "wfp.deploy.succeeded", "{}", event.json);
        sources.insert(event.json["source"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(sources.len(), 2, "both workers deployed: {sources:?}");

    let calls = requests(&app.sim).await.len();
    assert_eq!(calls, 3 * JOBS, "a session, an upload and a PUT per job");
    assert!(calls > QUOTA, "more calls than one window allows");
    let over = &stats(&app.sim).await["rate_limit"]["over_budget"];
    assert_eq!(over, 0, "no call was over the token's budget");

    worker.stop().await.expect("second worker stops cleanly");
    app.stop().await;
}
