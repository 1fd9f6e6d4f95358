//! The whole flow: bytes and media types, credentials, unchanged sites.

use super::*;

#[tokio::test]
async fn full_flow_serves_every_byte_with_its_media_type() {
    let sim = spawn_sim().await;
    let png: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let site = Site::new(&[
        ("/index.html", b"<h1>hello</h1>"),
        ("/copy/index.html", b"<h1>hello</h1>"),
        ("/css/site.css", b"body{margin:0}"),
        ("/img/logo.png", &png),
        ("/LICENSE", b"MIT"),
        ("/data.json", b"{\"a\":1}"),
    ]);
    let client = client(&sim);
    let done = deploy(&client, "acme-site", &site, &with_code())
        .await
        .expect("deploy");

    assert_eq!(done.id.as_deref(), Some("acme-site"));
    assert!(done.etag.is_some() && done.modified_on.is_some());
    let unique_bytes = 14 + 14 + 3000 + 3 + 7;
    assert_eq!(done.stats.sessions, 1);
    assert_eq!(done.stats.files, 5, "the copy shares its hash");
    assert_eq!(done.stats.bytes, unique_bytes);
    assert_eq!(stats(&sim).await["bytes_uploaded"], unique_bytes);

    for (path, bytes, media_type) in [
        (
            "/index.html",
            &b"<h1>hello</h1>"[..],
            "text/html; charset=utf-8",
        ),
        (
            "/copy/index.html",
            b"<h1>hello</h1>",
            "text/html; charset=utf-8",
        ),
        (
            "/css/site.css",
            b"body{margin:0}",
            "text/css; charset=utf-8",
        ),
        ("/img/logo.png", &png, "image/png"),
        ("/LICENSE", b"MIT", "application/octet-stream"),
        ("/data.json", b"{\"a\":1}", "application/json"),
    ] {
        let (served_type, served) = asset(&sim, ACCOUNT, "customers", "acme-site", path).await;
        assert_eq!(served, bytes, "{path}");
        assert_eq!(served_type, media_type, "{path}");
    }
    let live = deployment(&sim, ACCOUNT, "customers", "acme-site").await;
    assert_eq!(live["metadata"]["main_module"], "index.js");
    assert_eq!(
        live["metadata"]["bindings"],
        json!([{ "type": "assets", "name": "ASSETS" }])
    );
    assert_eq!(
        live["metadata"]["assets"]["config"]["html_handling"],
        "auto-trailing-slash"
    );
    assert_eq!(
        live["modules"][0]["content_type"],
        "application/javascript+module"
    );
}

#[tokio::test]
async fn credentials_go_only_where_they_belong() {
    let sim = spawn_sim().await;
    let site = Site::pages(12);
    deploy(&client(&sim), "creds", &site, &assets_only())
        .await
        .expect("deploy");
    let log = log(&sim).await;
    assert!(log.iter().any(|(e, _, _)| e == "upload"), "{log:?}");
    for (endpoint, status, auth) in &log {
        let expected = if endpoint == "upload" {
            "upload_jwt"
        } else {
            "api_token"
        };
        assert_eq!(auth, expected, "{endpoint} answered {status:?}");
    }
}

#[tokio::test]
async fn an_unchanged_site_uploads_nothing() {
    let sim = spawn_sim().await;
    let site = Site::pages(4);
    let client = client(&sim);
    deploy(&client, "same", &site, &with_code())
        .await
        .expect("first deploy");
    let uploaded = stats(&sim).await["files_uploaded"].clone();

    let t = target("same");
    let session = client
        .start_session(&t, &site.manifest)
        .await
        .expect("session");
    assert!(session.buckets.is_empty());
    let assets = client
        .upload(&t, &site.manifest, &site, session)
        .await
        .expect("upload");
    assert_eq!(
        (
            assets.stats.sessions,
            assets.stats.files,
            assets.stats.buckets
        ),
        (1, 0, 0)
    );
    let done = client
        .deploy(&t, &site.manifest, &site, assets, &assets_only())
        .await
        .expect("deploy");
    assert_eq!(done.stats.sessions, 1);
    assert_eq!(stats(&sim).await["files_uploaded"], uploaded);
    let live = deployment(&sim, ACCOUNT, "customers", "same").await;
    assert_eq!(
        live["metadata"].get("main_module"),
        None,
        "assets only: no code"
    );
    assert_eq!(live["modules"], json!([]));
}
