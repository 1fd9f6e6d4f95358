//! The per-token budget (`--rate-limit`): Cloudflare's `Ratelimit` headers
//! on every answer, and a token over its budget blocked with 429, code 971
//! and `Retry-After` for the penalty.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::{Value, json};
use wfp_deployer::sim::{RateLimitConfig, SimConfig, parse_rate_limit};

use super::{ACCOUNT, Api, NS, code, manifest, message};
use crate::helpers::sim::{TEST_TOKEN, add_fault, requests, stats};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Three requests a minute per token, blocked for one second when over.
async fn limited() -> Api {
    let mut config = SimConfig::for_tests();
    config.api_tokens.push(SecretString::from("other-token"));
    config.rate_limit = RateLimitConfig {
        limit: Some(parse_rate_limit("3/60s").unwrap()),
        penalty: Duration::from_secs(1),
    };
    Api::with(config).await
}

#[tokio::test]
async fn a_token_over_its_budget_is_blocked_with_cloudflares_answer() {
    let api = limited().await;
    let body = manifest(&[("/a.txt", b"alpha")]);
    let session = |token: &'static str| {
        api.http
            .post(api.session_url(ACCOUNT, NS, "limited"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let mut jwt = String::new();
    for left in [2, 1, 0] {
        let response = session(TEST_TOKEN).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let now = header(response.headers(), "ratelimit").to_owned();
        assert!(
            now.starts_with(&format!("\"default\";r={left};t=")),
            "{now}"
        );
        let t: u64 = now.rsplit("t=").next().unwrap().parse().unwrap();
        assert!((1..=60).contains(&t), "{now}");
        assert_eq!(
            header(response.headers(), "ratelimit-policy"),
            "\"default\";q=3;w=60"
        );
        let answer: Value = response.json().await.unwrap();
        jwt = answer["result"]["jwt"].as_str().unwrap().to_owned();
    }

    // The fourth call: blocked, as Cloudflare blocks a token.
    let response = session(TEST_TOKEN).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(response.headers(), "retry-after"), "1");
    assert_eq!(
        header(response.headers(), "ratelimit"),
        "\"default\";r=0;t=1"
    );
    let answer: Value = response.json().await.unwrap();
    assert_eq!(code(&answer), 971);
    assert!(
        message(&answer).contains("More than 3 requests per 60 seconds"),
        "{answer}"
    );
    // An upload carries a JWT, and counts against the token of its account.
    let (status, answer) = api.upload_files(&jwt, &[(b"alpha", "text/plain")]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    // Another token has a budget of its own.
    let response = session("other-token").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(response.headers(), "ratelimit").starts_with("\"default\";r=2;"));

    // A refused request consumes no fault rule; once the block is over, the
    // next request gets the fault, and a new window.
    add_fault(
        &api.sim,
        json!({"endpoint": "session", "kind": "status", "status": 503, "count": 1}),
    )
    .await;
    assert_eq!(
        session(TEST_TOKEN).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let response = session(TEST_TOKEN).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(header(response.headers(), "ratelimit").starts_with("\"default\";r=2;"));
    assert_eq!(session(TEST_TOKEN).await.unwrap().status(), StatusCode::OK);

    assert_eq!(stats(&api.sim).await["rate_limit"]["over_budget"], 3);
    let refused: Vec<Value> = requests(&api.sim)
        .await
        .into_iter()
        .filter(|r| r["fault"] == "over_budget")
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused.iter().all(|r| r["status"] == 429), "{refused:?}");
}

#[tokio::test]
async fn without_a_budget_answers_carry_no_rate_limit_headers() {
    let api = Api::start().await;
    let response = api
        .http
        .post(api.session_url(ACCOUNT, NS, "free"))
        .bearer_auth(TEST_TOKEN)
        .json(&manifest(&[("/a.txt", b"alpha")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("ratelimit").is_none());
    assert!(response.headers().get("ratelimit-policy").is_none());
    assert_eq!(stats(&api.sim).await["rate_limit"]["over_budget"], 0);
}
