//! A stalled server must fail a call with a timeout, never hang a job: one
//! that accepts and never answers, and one that stops mid-body. Raw TCP,
//! because the point is a server that misbehaves below HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{CloudflareClient, CloudflareError, ScriptTarget, TransportKind};
use crate::config::{CloudflareSettings, RetrySettings};
use crate::manifest::{Manifest, ManifestEntry};

/// How the fake server misbehaves once a request arrived.
#[derive(Clone, Copy)]
enum Stall {
    /// Reads the request, never answers.
    Silent,
    /// Sends the headers and the start of a promised body, then nothing.
    MidBody,
}

/// Serves `stall` on a loopback port; counts connections. Sockets are kept
/// open until the test ends so the client sees a stall, not a reset.
async fn stalling_server(stall: Stall) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            if let Stall::MidBody = stall {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"success\":tr";
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.flush().await;
            }
            held.push(socket);
        }
    });
    (format!("http://{addr}/client/v4"), connections)
}

fn client(base: String) -> CloudflareClient {
    let settings = CloudflareSettings {
        api_base_url: base,
        api_token: Some(SecretString::from("t")),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(250),
        ..CloudflareSettings::default()
    };
    let retry = RetrySettings {
        max_attempts: 2,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_millis(100),
    };
    CloudflareClient::new(&settings, &retry).unwrap()
}

async fn session_against(stall: Stall) -> (CloudflareError, usize, Duration) {
    let (base, connections) = stalling_server(stall).await;
    let target = ScriptTarget {
        account_id: "0123456789abcdef0123456789abcdef".into(),
        namespace: "customers".into(),
        script_name: "stuck".into(),
    };
    let mut manifest = Manifest::new();
    let hash = crate::manifest::asset_hash(b"x");
    let content = crate::manifest::ContentDigest::of(b"x");
    manifest.insert("/x".into(), ManifestEntry { hash, size: 1 }, content);
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        client(base).start_session(&target, &manifest),
    )
    .await
    .expect("the client must not hang");
    let err = outcome.expect_err("a stalled server cannot succeed");
    (err, connections.load(Ordering::SeqCst), started.elapsed())
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (err, connections, took) = session_against(Stall::Silent).await;
    assert!(
        matches!(
            err,
            CloudflareError::Transport {
                kind: TransportKind::Timeout,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        connections, 2,
        "a timed-out try is retried on a new connection"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        err.to_string()
            .starts_with("session for customers/stuck: timed out"),
        "{err}"
    );
}

#[tokio::test]
async fn a_body_that_stops_midway_times_out() {
    let (err, _, took) = session_against(Stall::MidBody).await;
    assert!(
        matches!(
            err,
            CloudflareError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}
