//! Faults: retries, Retry-After, rejections, stalls, local failures, secrets.

use super::*;

#[tokio::test]
async fn server_errors_on_every_step_are_retried() {
    let sim = spawn_sim().await;
    for endpoint in ["session", "upload", "script"] {
        add_fault(
            &sim,
            json!({ "endpoint": endpoint, "kind": "status", "status": 503, "count": 2 }),
        )
        .await;
    }
    let done = deploy(&client(&sim), "flaky", &Site::pages(3), &with_code()).await;
    assert!(done.is_ok(), "{:?}", done.err());
    let log = log(&sim).await;
    for endpoint in ["session", "upload", "script"] {
        let statuses: Vec<_> = log
            .iter()
            .filter(|(e, ..)| e == endpoint)
            .map(|(_, s, _)| *s)
            .collect();
        assert_eq!(
            &statuses[..2],
            &[Some(503), Some(503)],
            "{endpoint}: {statuses:?}"
        );
        assert_eq!(statuses.len(), 3, "{endpoint}: {statuses:?}");
    }
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_asked() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "session", "kind": "429", "retry_after": 1, "count": 1 }),
    )
    .await;
    add_fault(&sim, json!({ "endpoint": "upload", "kind": "status", "status": 503, "retry_after": 1, "count": 1 })).await;
    deploy(&client(&sim), "limited", &Site::pages(2), &assets_only())
        .await
        .expect("deploy");
    let log = requests(&sim).await;
    for endpoint in ["session", "upload"] {
        let at: Vec<i64> = log
            .iter()
            .filter(|r| r["endpoint"] == endpoint)
            .filter_map(|r| r["at_ms"].as_i64())
            .collect();
        assert!(at.len() >= 2, "{endpoint}: {log:?}");
        assert!(
            at[1] - at[0] >= 1000,
            "{endpoint} retried after {} ms",
            at[1] - at[0]
        );
    }
}

#[tokio::test]
async fn retry_after_beyond_our_ceiling_fails_at_once() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "session", "kind": "429", "retry_after": 60, "count": 1 }),
    )
    .await;
    let err = deploy(&client(&sim), "patient", &Site::pages(1), &assets_only())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudflareError::RetryAfterTooLong { status: 429, .. }),
        "{err:?}"
    );
    assert!(err.is_transient() && err.step() == CfStep::Session);
    assert_eq!(log(&sim).await.len(), 1, "no retry sooner than asked");
}

#[tokio::test]
async fn rejected_requests_fail_without_retry_and_name_the_code() {
    let sim = spawn_sim().await;
    let err = deploy(
        &client(&sim),
        "Not-A-Valid-Name",
        &Site::pages(1),
        &assets_only(),
    )
    .await
    .unwrap_err();
    assert_eq!((err.step(), err.status()), (CfStep::Session, Some(400)));
    assert!(!err.is_transient() && !err.is_auth());
    let shown = err.to_string();
    assert!(
        shown.starts_with("session for customers/Not-A-Valid-Name: HTTP 400, code 10016"),
        "{shown}"
    );
    assert_eq!(log(&sim).await.len(), 1);

    let mut wrong = settings(&sim);
    wrong.api_token = Some(SecretString::from("wrong-token"));
    let err = deploy(&client_with(wrong), "acme", &Site::pages(1), &assets_only())
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(!err.to_string().contains("wrong-token"), "{err}");
    assert_eq!(log(&sim).await.len(), 2);
}

/// No clock is read: every session answer comes 3 s late, ten times the
/// request timeout, so only a client whose own timeout cut each try fails
/// with `Timeout` (one that waited would be answered and deploy). The
/// simulator's clock is the client's (tokio's, one process) and its delay
/// starts after the client's, so the order holds on any machine.
#[tokio::test]
async fn a_stalled_answer_times_out_instead_of_hanging() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "session", "kind": "latency", "ms": 3_000 }),
    )
    .await;
    let mut s = settings(&sim);
    s.request_timeout = Duration::from_millis(300);
    let err = deploy(&client_with(s), "stalled", &Site::pages(1), &assets_only())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CloudflareError::Transport {
                kind: wfp_deployer::cloudflare::TransportKind::Timeout,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_missing_asset_is_a_local_error() {
    let sim = spawn_sim().await;
    let mut site = Site::new(&[("/gone.html", b"bye")]);
    site.files.clear();
    let err = deploy(&client(&sim), "local", &site, &assets_only())
        .await
        .unwrap_err();
    assert!(err.is_local(), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("upload for customers/local: reading asset /gone.html"),
        "{shown}"
    );
    assert!(!log(&sim).await.iter().any(|(e, ..)| e == "upload"));
}

#[test]
fn errors_and_debug_never_show_the_token() {
    let s = CloudflareSettings {
        api_token: Some(SecretString::from("tok-very-secret")),
        ..CloudflareSettings::default()
    };
    let client = CloudflareClient::new(&s, &fast_retries()).expect("client");
    assert!(!format!("{client:?}").contains("tok-very-secret"));
}
