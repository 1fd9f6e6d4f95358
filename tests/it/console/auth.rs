//! Who may use the console: a token when configured (bearer or basic), no
//! open console off loopback, and no state change from another site.

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wfp_deployer::console::server::{ConsoleError, bind};

use super::Console;
use crate::cli_tools::run;
use crate::helpers::amqp::unique_settings;

const TOKEN: &str = "console-test-token";

/// The page's CSRF token, read from its meta tag.
fn csrf_of(page: &str) -> String {
    let start = page
        .find("name=\"csrf-token\" content=\"")
        .expect("the meta tag")
        + 27;
    page[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn without_a_token_the_console_listens_on_loopback_only() {
    let (mut settings, _topology) = unique_settings();
    let stop = CancellationToken::new();
    let refused = bind(&settings, "0.0.0.0:0".parse().unwrap(), stop.clone()).await;
    let Err(error @ ConsoleError::Exposed { .. }) = refused else {
        panic!("an open console off loopback must be refused");
    };
    assert!(error.to_string().contains("console.token"), "{error}");

    // The binary says the same, and exits.
    let out = run(&settings, &["console", "--listen", "0.0.0.0:0"]).await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("console.token is not set"),
        "{}",
        out.stderr
    );

    // With a token, it may.
    settings.console.token = Some(SecretString::from(TOKEN));
    let (addr, serve) = bind(&settings, "0.0.0.0:0".parse().unwrap(), stop.clone())
        .await
        .expect("a token makes it safe");
    tokio::spawn(serve);
    let answer = reqwest::get(format!("http://127.0.0.1:{}/api/state", addr.port()))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    stop.cancel();
}

#[tokio::test]
async fn the_token_is_needed_as_bearer_or_basic_auth_and_posts_need_the_same_origin() {
    let (mut settings, _topology) = unique_settings();
    settings.console.token = Some(SecretString::from(TOKEN));
    let console = Console::start(&settings).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", console.addr);

    let anonymous = client.get(url("/")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    let wrong = client
        .get(url("/"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic = client
        .get(url("/"))
        .basic_auth("operator", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
    let csp = basic.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = basic.text().await.unwrap();
    let csrf = csrf_of(&page);
    let state = client
        .get(url("/api/state"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), StatusCode::OK);

    let requeue = url("/api/dlq/requeue");
    let body = json!({"ids": ["nothing"]});
    let no_csrf = client
        .post(&requeue)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    let other_site = client
        .post(&requeue)
        .bearer_auth(TOKEN)
        .header("x-csrf-token", &csrf)
        .header("origin", "http://attacker.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(other_site.status(), StatusCode::FORBIDDEN);
    let cross_fetch = client
        .post(&requeue)
        .bearer_auth(TOKEN)
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "cross-site")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_fetch.status(), StatusCode::FORBIDDEN);
    let unauthenticated = client
        .post(&requeue)
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    // The page's own request passes the guard (the queue does not exist in
    // this test's broker names, so the broker's answer comes back).
    let own = client
        .post(&requeue)
        .header(AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header("x-csrf-token", &csrf)
        .header("origin", format!("http://{}", console.addr))
        .header("sec-fetch-site", "same-origin")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::BAD_GATEWAY);
    let error = own.json::<serde_json::Value>().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("does not exist"),
        "{error}"
    );
}
