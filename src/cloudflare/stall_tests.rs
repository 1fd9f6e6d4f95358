//! A stalled server must fail a call with a timeout, never hang a job: one
//! that accepts and never answers, and one that stops mid-body. Raw TCP,
//! because the point is a server that misbehaves below HTTP.
//!
//! No test measures how long it took. The server hangs up [`HANG_UP`] after
//! each request, long after the client's request timeout: a client that did
//! not cut the call with that timeout would see the connection closed (or
//! hang, were the server silent forever), never a timeout. So a `Timeout`
//! error after every configured try, one connection each, proves the
//! configured timeout cut every try, on any machine: both clocks are tokio's,
//! and the client's deadline comes first.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// How long the server holds a stalled connection before it hangs up: many
/// times the client's request timeout (the test's `client`).
const HANG_UP: Duration = Duration::from_secs(2);

/// Serves `stall` on a loopback port; counts connections. Each connection is
/// held open, silent, for [`HANG_UP`] after the request, then closed.
async fn stalling_server(stall: Stall) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(stall_on(socket, stall));
        }
    });
    (format!("http://{addr}/client/v4"), connections)
}

/// Reads one request, misbehaves as `stall` says, hangs up after [`HANG_UP`].
async fn stall_on(mut socket: TcpStream, stall: Stall) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    if let Stall::MidBody = stall {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"success\":tr";
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.flush().await;
    }
    tokio::time::sleep(HANG_UP).await;
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

/// The session call's error and how many connections the server saw.
async fn session_against(stall: Stall) -> (CloudflareError, usize) {
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
    let outcome = client(base).start_session(&target, &manifest).await;
    let err = outcome.expect_err("a stalled server cannot succeed");
    (err, connections.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (err, connections) = session_against(Stall::Silent).await;
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
    assert!(
        err.to_string()
            .starts_with("session for customers/stuck: timed out"),
        "{err}"
    );
}

#[tokio::test]
async fn a_body_that_stops_midway_times_out() {
    let (err, connections) = session_against(Stall::MidBody).await;
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
    assert_eq!(
        connections, 2,
        "a timed-out try is retried on a new connection"
    );
}
