//! Prefix bundles with odd keys: each refused with `bundle_invalid`, naming
//! the key as S3 holds it (control and invisible characters escaped),
//! before anything reaches Cloudflare; keys that are merely unusual (a
//! space, a `+`, a lone `%`, Unicode) deploy as they are.

use serde_json::json;

use super::{assert_nothing_sent, assert_refused, on_both_servers};
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::asset;

/// Regression: a key holding `\x01` used to fail the whole listing as a
/// non-retryable `storage_error` "HTTP 200" naming no key (XML 1.0 cannot
/// carry the character); listings are now URL-encoded and decoded. s3s-fs
/// cannot list such a key at all (it answers 500), so this runs on moto.
#[tokio::test]
async fn a_key_holding_x01_fails_naming_it_not_as_http_200() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("ctl/ok.html", "ok").await;
    app.bucket.put("ctl/a\u{1}b.html", "x").await;
    let job = app.job("ctl-1", "ctl", "ctl/");
    let names = format!(
        "s3://{}/ctl/a\\u{{1}}b.html: invalid path: control character",
        app.bucket.name()
    );
    assert_refused(&mut app, "\\x01", &job, "bundle_invalid", &names).await;
    app.stop().await;
}

async fn odd_keys_are_refused_naming_the_key(server: S3Server) {
    let mut app = TestApp::spawn(server).await;
    let mut cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "question mark",
            vec!["q?x.html"],
            "q?x.html: invalid path: '?' cannot be part of a URL path (it starts the query)".into(),
        ),
        (
            "hash",
            vec!["h#x.html"],
            "h#x.html: invalid path: '#' cannot be part of a URL path (it starts the fragment)"
                .into(),
        ),
        (
            "bidi override",
            vec!["invoice\u{202e}lmth.exe"],
            "invoice\\u{202e}lmth.exe: invalid path: invisible formatting character \\u{202e}"
                .into(),
        ),
        (
            "zero width",
            vec!["pay\u{200b}pal.html"],
            "pay\\u{200b}pal.html: invalid path: invisible formatting character \\u{200b}".into(),
        ),
        (
            "nfc collision",
            vec!["caf\u{e9}.html", "cafe\u{301}.html"],
            "caf\u{e9}.html: invalid path: same path as cafe\u{301}.html once Unicode-normalised (NFC)"
                .into(),
        ),
        (
            "broken _headers",
            vec!["_headers"],
            "/: _headers:1: ".into(),
        ),
    ];
    cases.push(match server {
        S3Server::Moto => (
            "percent-encoded slash",
            vec!["e%2Ff.html", "e/f.html"],
            "e%2Ff.html: invalid path: \"%2F\" is a percent-encoded byte, which Cloudflare decodes before looking a path up".into(),
        ),
        // s3s-fs says its listing is URL-encoded without encoding it, so
        // the key reads as `e/f.html`: refused all the same, as a path twice.
        S3Server::S3s => (
            "percent-encoded slash",
            vec!["e%2Ff.html", "e/f.html"],
            "e/f.html: invalid path: a second file with this path".into(),
        ),
    });
    for (i, (label, keys, names)) in cases.iter().enumerate() {
        let prefix = format!("odd{i}/");
        app.bucket.put(format!("{prefix}ok.html"), "ok").await;
        for key in keys {
            let body = if *key == "_headers" {
                "no pattern first\n"
            } else {
                "x"
            };
            app.bucket.put(format!("{prefix}{key}"), body).await;
        }
        let job = app.job(&format!("odd-{i}"), "odd", &prefix);
        assert_refused(&mut app, label, &job, "bundle_invalid", names).await;
    }
    assert_nothing_sent(&app, "every odd key").await;

    // Unusual but unambiguous keys deploy as they are, after all of that.
    let fine = [
        "with space/a+b.html",
        "50%.html",
        "ünïcode/файл.html",
        "a=b&c.html",
    ];
    for key in fine {
        app.bucket
            .put(format!("fine/{key}"), key.as_bytes().to_vec())
            .await;
    }
    let event = app.deploy_ok(&app.job("fine-1", "fine", "fine/")).await;
    assert_eq!(event.data()["manifest"]["files"], json!(fine.len()));
    for key in fine {
        let (_, bytes) = asset(
            &app.sim,
            TEST_ACCOUNT,
            "customers",
            "fine",
            &format!("/{key}"),
        )
        .await;
        assert_eq!(bytes, key.as_bytes(), "{key}");
    }
    app.stop().await;
}

on_both_servers!(odd_keys_are_refused_naming_the_key);
