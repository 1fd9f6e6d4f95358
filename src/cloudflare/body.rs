//! Reading an answer's body, up to a cap.
//!
//! Every Cloudflare answer is a small JSON envelope (a session's bucket
//! list, a deployment's metadata: kilobytes). A broken proxy or a hostile
//! endpoint can answer with anything, though, and `Response::bytes` reads
//! it all: a 1.5 GB body once took 3 GB of memory. [`read_capped`] stops at
//! [`MAX_RESPONSE_BYTES`] (refusing at once a `Content-Length` over it),
//! and the try fails as a transport error naming the cap, retried like a
//! broken connection.

use bytes::{Bytes, BytesMut};

use super::backoff::Failed;
use super::envelope::Call;
use super::error::{CloudflareError, TransportKind};

/// Largest answer body read from Cloudflare: 16 MiB, far above any
/// envelope the three calls get.
pub(super) const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Why a body could not be read.
#[derive(Debug)]
pub(super) enum BodyError {
    /// The connection failed while reading.
    Transport(reqwest::Error),
    /// The body is (or says it is) longer than the cap.
    TooLarge { cap: usize },
}

impl BodyError {
    /// The failed try: `transport` turns a connection failure into one (the
    /// client's one mapping); a body over the cap is a transport error
    /// naming the cap.
    pub(super) fn failed(
        self,
        call: Call<'_>,
        transport: fn(Call<'_>, &reqwest::Error) -> Failed,
    ) -> Failed {
        match self {
            BodyError::Transport(e) => transport(call, &e),
            BodyError::TooLarge { cap } => CloudflareError::Transport {
                step: call.step,
                subject: call.subject.to_string(),
                kind: TransportKind::Other,
                message: format!("response body over the cap of {cap} bytes, not read"),
                attempts: 1,
            }
            .into(),
        }
    }
}

/// The whole body of `response`, unless it is longer than `cap` bytes.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Bytes, BodyError> {
    let declared = response.content_length().unwrap_or(0);
    if !usize::try_from(declared).is_ok_and(|declared| declared <= cap) {
        return Err(BodyError::TooLarge { cap });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if chunk.len() > cap - body.len() {
            return Err(BodyError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves one answer: `head` (status line and headers), then `body`
    /// written in 64 KiB pieces until the client stops reading.
    async fn serve_once(head: String, body: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(head.as_bytes()).await;
            let piece = vec![b'x'; 64 * 1024];
            let mut left = body;
            while left > 0 {
                let n = left.min(piece.len());
                if socket.write_all(&piece[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
        });
        url
    }

    async fn get(url: &str) -> reqwest::Response {
        reqwest::get(url).await.unwrap()
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_read_whole() {
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n".to_string();
        let body = read_capped(get(&serve_once(head, 1000).await).await, 1000).await;
        assert_eq!(body.unwrap().len(), 1000);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_refused_unread() {
        // Regression: a 1.5 GB answer was read whole.
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 1500000000\r\n\r\n".to_string();
        let response = get(&serve_once(head, 1_500_000_000).await).await;
        let err = read_capped(response, MAX_RESPONSE_BYTES).await.unwrap_err();
        assert!(matches!(
            err,
            BodyError::TooLarge {
                cap: MAX_RESPONSE_BYTES
            }
        ));
    }

    #[tokio::test]
    async fn an_undeclared_body_stops_at_the_cap() {
        // No length: the body runs until the server closes (HTTP/1.0 style).
        let head = "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string();
        let response = get(&serve_once(head, 64 * 1024 * 1024).await).await;
        let err = read_capped(response, MAX_RESPONSE_BYTES).await.unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_cloudflare_call_answered_with_a_huge_body_fails_naming_the_cap() {
        // Regression: a 1.5 GB answer from the API was read whole (3 GB of
        // memory). Here 40 MiB of no declared length, over the 16 MiB cap.
        use crate::config::{CloudflareSettings, RetrySettings};
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                    connection: close\r\n\r\n"
            .to_string();
        let base = serve_once(head, 40 * 1024 * 1024).await;
        let settings = CloudflareSettings {
            api_base_url: format!("{base}client/v4"),
            api_token: Some("t".to_string().into()),
            ..CloudflareSettings::default()
        };
        let retry = RetrySettings {
            max_attempts: 1,
            ..RetrySettings::default()
        };
        let client = super::super::CloudflareClient::new(&settings, &retry).unwrap();
        let target = super::super::ScriptTarget {
            account_id: "0123456789abcdef0123456789abcdef".into(),
            namespace: "customers".into(),
            script_name: "acme-site".into(),
        };
        let mut manifest = crate::manifest::Manifest::new();
        let hash = crate::manifest::asset_hash(b"x");
        manifest.insert(
            "/x".into(),
            crate::manifest::ManifestEntry { hash, size: 1 },
            crate::manifest::ContentDigest::of(b"x"),
        );
        let err = client.start_session(&target, &manifest).await.unwrap_err();
        assert!(
            matches!(err, CloudflareError::Transport { .. }) && err.is_transient(),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("response body over the cap of 16777216 bytes, not read"),
            "{err}"
        );
    }

    #[test]
    fn over_the_cap_is_a_retryable_transport_error_naming_the_cap() {
        fn unused(_: Call<'_>, _: &reqwest::Error) -> Failed {
            unreachable!("no connection failure here")
        }
        let call = Call {
            step: super::super::CfStep::Session,
            subject: "customers/acme-site",
        };
        let failed = BodyError::TooLarge { cap: 16 }.failed(call, unused);
        assert!(failed.error.is_transient());
        assert_eq!(
            failed.error.to_string(),
            "session for customers/acme-site: connection failed: response body over the cap of 16 bytes, not read"
        );
    }
}
