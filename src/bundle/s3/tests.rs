//! Failure modes real S3 servers cannot be made to show on demand: a body
//! that stalls, a `503 SlowDown`, a body longer than listed, a connection
//! refused. A few lines of HTTP/1.1 on a loopback socket stand in for S3.
//! (The behaviour against real servers is tested in `tests/it/s3.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::bundle::{BundleErrorKind, BundleStep};
use crate::cache::DigestCache;
use crate::config::LimitSettings;

/// What the fake answers to one request: raw bytes, and whether to then
/// hold the connection open without a word (a stalled body).
type Handler = dyn Fn(&str, usize) -> (Vec<u8>, bool) + Send + Sync;

/// Serves `handler(request line, n-th GET of an object)` on a loopback port.
async fn fake_s3(handler: Arc<Handler>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let gets = Arc::new(AtomicUsize::new(0));
    let counter = gets.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(socket, handler.clone(), counter.clone()));
        }
    });
    (endpoint, gets)
}

async fn serve(mut socket: TcpStream, handler: Arc<Handler>, gets: Arc<AtomicUsize>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end);
        let line = head.lines().next().unwrap_or_default().to_string();
        let n = if line.contains("list-type=2") {
            0
        } else {
            gets.fetch_add(1, Ordering::SeqCst)
        };
        let (response, stall) = handler(&line, n);
        if socket.write_all(&response).await.is_err() {
            return;
        }
        if stall {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

fn response(status: &str, body: &[u8], content_length: usize) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {content_length}\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A one-page listing of `p/a.txt` with `size` bytes.
fn listing(size: u64) -> Vec<u8> {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>p/a.txt</Key><Size>{size}</Size></Contents></ListBucketResult>"#
    );
    response("200 OK", xml.as_bytes(), xml.len())
}

async fn storage(endpoint: &str, attempts: usize, timeout: Duration) -> S3Storage {
    let settings = S3Settings {
        endpoint_url: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
        force_path_style: true,
        access_key_id: Some("fake".into()),
        secret_access_key: Some(SecretString::from("fake-secret")),
        connect_timeout: Duration::from_secs(1),
        request_timeout: timeout,
        first_byte_timeout: timeout,
        idle_timeout: timeout,
        ..S3Settings::default()
    };
    let retry = RetrySettings {
        max_attempts: attempts,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(5),
    };
    S3Storage::new(&settings, &retry, 4).await
}

async fn ingest(storage: &S3Storage) -> (Result<Ingested, BundleError>, Spool, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let context = IngestContext {
        limits: &LimitSettings::default(),
        cache: &Arc::new(DigestCache::disabled()),
        spool: &spool,
        html_handling: None,
        progress: &(),
        gate: &(),
    };
    let result = storage.prefix("b", "p/").ingest(&context).await;
    (result, spool, root)
}

fn spool_files(spool: &Spool) -> usize {
    std::fs::read_dir(spool.path()).unwrap().count()
}

#[tokio::test]
async fn a_stalled_body_times_out_and_is_retried() {
    let handler: Arc<Handler> = Arc::new(|line: &str, _| {
        if line.contains("list-type=2") {
            (listing(10), false)
        } else {
            // Promise ten bytes, send five, then nothing.
            (response("200 OK", b"12345", 10), true)
        }
    });
    let (endpoint, gets) = fake_s3(handler).await;
    let storage = storage(&endpoint, 2, Duration::from_millis(300)).await;
    let (result, spool, _root) = ingest(&storage).await;
    let err = result.unwrap_err();
    // No clock: the message is our per-chunk timeout's, naming the 0.3 s it
    // waited (the SDK's own stalled-stream guard words it otherwise), and
    // two GETs show it cut each try; the fake never sends the last 5 bytes.
    assert_eq!(err.kind(), BundleErrorKind::Storage { retryable: true });
    assert_eq!(err.step(), BundleStep::Hash);
    let message = err.to_string();
    assert!(
        message.starts_with("s3://b/p/a.txt: body stalled: no data for 0.3s"),
        "{message}"
    );
    assert!(message.ends_with("(after 2 attempts)"), "{message}");
    assert_eq!(gets.load(Ordering::SeqCst), 2);
    assert_eq!(
        spool_files(&spool),
        0,
        "the unfinished writers left files behind"
    );
}

#[tokio::test]
async fn slow_down_is_retried_then_succeeds() {
    let handler: Arc<Handler> = Arc::new(|line: &str, n| {
        if line.contains("list-type=2") {
            (listing(5), false)
        } else if n == 0 {
            let xml = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            (response("503 Slow Down", xml, xml.len()), false)
        } else {
            (response("200 OK", b"hello", 5), false)
        }
    });
    let (endpoint, gets) = fake_s3(handler).await;
    let storage = storage(&endpoint, 3, Duration::from_secs(5)).await;
    let (result, spool, _root) = ingest(&storage).await;
    let ingested = result.unwrap();
    let file = &ingested.files[0];
    assert_eq!(file.path, "/a.txt");
    assert_eq!(file.digest, ContentDigest::of(b"hello"));
    assert_eq!(ingested.bytes_read, 5);
    assert_eq!(gets.load(Ordering::SeqCst), 2);
    // Hashing kept one copy, under its digest: the refused try left none.
    assert_eq!(spool_files(&spool), 1, "one copy kept while hashing");
    let kept = spool.file(&file.digest).await.unwrap();
    assert_eq!(std::fs::read(kept.path).unwrap(), b"hello");
    // Fetched for the upload all the same: one more GET, stored once.
    let read = storage.prefix("b", "p/").fetch(file, &spool).await.unwrap();
    assert_eq!(read, 5);
    assert_eq!(gets.load(Ordering::SeqCst), 3);
    let stored = spool.file(&file.digest).await.unwrap();
    assert_eq!(std::fs::read(stored.path).unwrap(), b"hello");
}

#[tokio::test]
async fn access_denied_is_not_retried() {
    let handler: Arc<Handler> = Arc::new(|line: &str, _| {
        if line.contains("list-type=2") {
            (listing(5), false)
        } else {
            let xml = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
            (response("403 Forbidden", xml, xml.len()), false)
        }
    });
    let (endpoint, gets) = fake_s3(handler).await;
    let storage = storage(&endpoint, 5, Duration::from_secs(5)).await;
    let (result, _spool, _root) = ingest(&storage).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::Storage { retryable: false });
    assert_eq!(
        err.to_string(),
        "s3://b/p/a.txt: HTTP 403 AccessDenied: Access Denied"
    );
    assert_eq!(gets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_longer_than_listed_is_refused_after_one_retry() {
    let handler: Arc<Handler> = Arc::new(|line: &str, _| {
        if line.contains("list-type=2") {
            (listing(5), false)
        } else {
            // No Content-Length check can catch this one: it lies too.
            let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            out.extend_from_slice(b"a\r\n0123456789\r\n0\r\n\r\n");
            (out, false)
        }
    });
    let (endpoint, gets) = fake_s3(handler).await;
    let storage = storage(&endpoint, 5, Duration::from_secs(5)).await;
    let (result, spool, _root) = ingest(&storage).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::Storage { retryable: true });
    assert_eq!(
        err.to_string(),
        "s3://b/p/a.txt: changed while reading (listed 5 bytes, body is longer) (after 2 attempts)"
    );
    assert_eq!(gets.load(Ordering::SeqCst), 2, "retried exactly once");
    assert_eq!(spool_files(&spool), 0);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_reported() {
    // Bind then drop: nothing listens on this port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = storage(
        &format!("http://127.0.0.1:{port}"),
        3,
        Duration::from_secs(5),
    )
    .await;
    let (result, _spool, _root) = ingest(&storage).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::Storage { retryable: true });
    assert_eq!(err.step(), BundleStep::List);
    let message = err.to_string();
    assert!(message.starts_with("s3://b/p/: "), "{message}");
    assert!(message.ends_with("(after 3 attempts)"), "{message}");
    assert!(!message.contains("fake-secret"), "{message}");
}

/// An object replaced between the listing and the GET is cached under the
/// version the GET read, never under the listed one: the cache cannot pair
/// one version's key with another version's digest.
#[tokio::test]
async fn a_hashed_object_is_keyed_by_the_version_its_get_answered() {
    const LISTED: &str = "0cc175b9c0f1b6a831c399e269772661";
    const READ: &str = "5d41402abc4b2a76b9719d911017c592";
    let handler: Arc<Handler> = Arc::new(|line: &str, _| {
        if line.contains("list-type=2") {
            let xml = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>p/a.txt</Key><ETag>&quot;{LISTED}&quot;</ETag><Size>5</Size></Contents></ListBucketResult>"#
            );
            (response("200 OK", xml.as_bytes(), xml.len()), false)
        } else {
            let head =
                format!("HTTP/1.1 200 OK\r\nETag: \"{READ}\"\r\nContent-Length: 5\r\n\r\nhello");
            (head.into_bytes(), false)
        }
    });
    let (endpoint, gets) = fake_s3(handler).await;
    let storage = storage(&endpoint, 2, Duration::from_secs(5)).await;
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let cache = Arc::new(DigestCache::new(
        &crate::config::CacheSettings::default(),
        None,
    ));
    let context = IngestContext {
        limits: &LimitSettings::default(),
        cache: &cache,
        spool: &spool,
        html_handling: None,
        progress: &(),
        gate: &(),
    };
    let ingested = storage.prefix("b", "p/").ingest(&context).await.unwrap();
    let file = &ingested.files[0];
    assert_eq!(file.digest, ContentDigest::of(b"hello"));
    assert_eq!(
        file.content_key,
        Some(Box::new(ContentKey::Md5 {
            md5: READ.into(),
            size: 5
        }))
    );
    assert_eq!((ingested.cache_hits, ingested.bytes_read), (0, 5));
    assert_eq!(
        gets.load(Ordering::SeqCst),
        1,
        "no HEAD: the listing had an ETag"
    );
}

/// Regression: a server that accepted the connection and then hung held
/// each attempt for the whole request timeout (120 s by default, about 12
/// minutes a job). Here the operation may take a minute, but the first byte
/// must come within 0.3 s. The fake hangs up after 3 s without a word: a
/// client that waited for it would see a closed connection, not a timeout.
#[tokio::test]
async fn a_server_that_accepts_and_hangs_fails_at_the_first_byte_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                tokio::time::sleep(Duration::from_secs(3)).await;
            });
        }
    });
    let settings = S3Settings {
        endpoint_url: Some(endpoint),
        region: Some("us-east-1".into()),
        force_path_style: true,
        access_key_id: Some("fake".into()),
        secret_access_key: Some(SecretString::from("fake-secret")),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(60),
        first_byte_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(60),
        ..S3Settings::default()
    };
    let retry = RetrySettings {
        max_attempts: 2,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(5),
    };
    let storage = S3Storage::new(&settings, &retry, 4).await;
    let (result, _spool, _root) = ingest(&storage).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::Storage { retryable: true });
    let message = err.to_string();
    assert!(message.contains("timed out"), "{message}");
    assert!(message.ends_with("(after 2 attempts)"), "{message}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "one connection a try");
}
