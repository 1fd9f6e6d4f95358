//! The API budget, as the simulator counts it: the fleet's `Ratelimit`
//! headers keep a client inside the token's budget, and a 429 pauses every
//! call of the process, not only the one refused.

use wfp_deployer::sim::{RateLimitConfig, parse_rate_limit};

use super::*;

/// A simulator whose token may make `limit` (`N/WINDOW`) requests.
async fn sim_with_budget(limit: &str) -> SimServer {
    let mut config = SimConfig::for_tests();
    config.rate_limit = RateLimitConfig {
        limit: Some(parse_rate_limit(limit).unwrap()),
        penalty: Duration::from_secs(60),
    };
    spawn_sim_with(config).await
}

/// 25 files of their own (3 buckets of 10): a session, 3 uploads, a PUT.
fn site(n: usize) -> Site {
    let bodies: Vec<(String, String)> = (0..25)
        .map(|i| (format!("/p-{i:02}.txt"), format!("site {n} page {i}\n")))
        .collect();
    let files: Vec<(&str, &[u8])> = bodies
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_bytes()))
        .collect();
    Site::new(&files)
}

/// Counts the API calls the simulator saw: all of them, and refused ones.
async fn calls(sim: &SimServer) -> (usize, u64) {
    let total = requests(sim).await.len();
    let over = stats(sim).await["rate_limit"]["over_budget"]
        .as_u64()
        .unwrap();
    (total, over)
}

#[tokio::test]
async fn the_fleet_headers_alone_keep_a_client_within_its_budget() {
    let sim = sim_with_budget("15/2s").await;
    // No local pacing: only what the answers say slows the client down.
    let client = client_with(CloudflareSettings {
        max_requests_per_minute: 0,
        ..settings(&sim)
    });
    for n in 0..6 {
        deploy(&client, &format!("fleet-{n}"), &site(n), &assets_only())
            .await
            .unwrap_or_else(|e| panic!("deploy {n}: {e}"));
    }
    let (total, over) = calls(&sim).await;
    assert_eq!(total, 30, "5 calls a deploy");
    assert_eq!(over, 0, "no call was over the budget");
}

#[tokio::test]
async fn a_429_pauses_every_call_of_the_process_for_its_retry_after() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "session", "kind": "429", "retry_after": 3, "count": 1 }),
    )
    .await;
    let retry = RetrySettings {
        max_retry_after: Duration::from_secs(5),
        ..fast_retries()
    };
    let client = CloudflareClient::new(&settings(&sim), &retry).expect("client");

    // Deploy A meets the 429...
    let first = {
        let client = client.clone();
        tokio::spawn(async move { deploy(&client, "paused-a", &site(1), &assets_only()).await })
    };
    let throttled_at = loop {
        let log = requests(&sim).await;
        if let Some(r) = log.iter().find(|r| r["status"] == 429) {
            break r["at_ms"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // ...then deploy B starts in the same process, while A waits.
    let b_started = chrono::Utc::now().timestamp_millis();
    assert!(
        b_started < throttled_at + 3000,
        "the test itself was too slow: B started after the pause"
    );
    deploy(&client, "paused-b", &site(2), &assets_only())
        .await
        .expect("deploy B");
    first.await.unwrap().expect("deploy A");

    let log = requests(&sim).await;
    let early: Vec<&Value> = log
        .iter()
        .filter(|r| r["status"] != 429)
        .filter(|r| r["at_ms"].as_i64().unwrap() < throttled_at + 3000)
        .collect();
    assert!(
        early.is_empty(),
        "reached the simulator within the Retry-After: {early:?}"
    );
    assert_eq!(log.len(), 11, "A: 429 + 5 calls, B: 5 calls: {log:?}");
}
