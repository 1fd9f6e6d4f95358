//! Adaptive upload concurrency against the simulator's fault rules: a
//! server error lowers the number of bucket POSTs in flight, and the
//! successes after it raise it back to `cloudflare.upload_concurrency`.
//! Observed through the metric the changes move, never through timing.

use super::*;

/// The sum of the `wfp_deployer_upload_concurrency_changes_total` samples
/// with this direction.
fn changes(text: &str, direction: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with("wfp_deployer_upload_concurrency_changes_total{"))
        .filter(|line| line.contains(&format!("direction=\"{direction}\"")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn server_errors_lower_the_upload_concurrency_and_successes_restore_it() {
    // This test's process has the recorder to itself (nextest).
    let metrics = wfp_deployer::ops::metrics_handle().expect("metrics recorder");
    // One file per bucket: 30 bucket POSTs.
    let sim = spawn_sim_with(SimConfig {
        bucket_max_files: 1,
        ..SimConfig::for_tests()
    })
    .await;
    add_fault(
        &sim,
        json!({ "endpoint": "upload", "kind": "status", "status": 503, "count": 2 }),
    )
    .await;
    let client = client_with(CloudflareSettings {
        upload_concurrency: 4,
        ..settings(&sim)
    });
    let site = Site::pages(30);
    deploy(&client, "adaptive", &site, &assets_only())
        .await
        .expect("the 503s are retried");
    assert_eq!(stats(&sim).await["files_uploaded"], 30);

    let text = metrics.render();
    let (down, up) = (changes(&text, "down"), changes(&text, "up"));
    // The two 503s halve the limit once (4 -> 2) when both tries were in
    // flight together, twice (4 -> 2 -> 1) when the second started after
    // the first was answered; either way the climb back to 4 takes one
    // step more than the halvings (2 -> 3 -> 4, or 1 -> 2 -> 3 -> 4).
    assert!(down >= 1.0, "{text}");
    assert_eq!(up, down + 1.0, "{text}");
}
