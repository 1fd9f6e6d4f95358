//! JWT lifetimes: renewals of the upload and completion JWTs, and their bounds.

use super::*;

#[tokio::test]
async fn upload_jwt_expiring_mid_upload_opens_a_new_session() {
    let sim = spawn_sim_with(SimConfig {
        bucket_max_files: 2,
        ..SimConfig::for_tests()
    })
    .await;
    // The sim's clock jumps an hour after the first bucket: the upload JWT is
    // spent by its clock while ours still thinks it fine, so it answers 401.
    add_fault(
        &sim,
        json!({ "endpoint": "upload", "kind": "advance_clock", "seconds": 3600, "count": 1 }),
    )
    .await;
    let mut s = settings(&sim);
    s.upload_concurrency = 1;
    let site = Site::pages(5);
    let done = deploy(&client_with(s), "slow", &site, &assets_only())
        .await
        .expect("deploy");
    assert_eq!(done.stats.sessions, 2);
    assert_eq!(done.stats.files, 5, "nothing stored is sent twice");
    assert_eq!(stats(&sim).await["files_uploaded"], 5);
    let uploads: Vec<_> = log(&sim)
        .await
        .into_iter()
        .filter(|(e, ..)| e == "upload")
        .map(|(_, s, _)| s)
        .collect();
    assert_eq!(uploads, vec![Some(200), Some(401), Some(200), Some(201)]);
    for i in 0..5 {
        let (_, bytes) = asset(
            &sim,
            ACCOUNT,
            "customers",
            "slow",
            &format!("/page-{i:02}.txt"),
        )
        .await;
        assert_eq!(bytes, format!("page {i}\n").as_bytes());
    }
}

#[tokio::test]
async fn parallel_buckets_share_one_renewal() {
    let sim = spawn_sim_with(SimConfig {
        bucket_max_files: 2,
        ..SimConfig::for_tests()
    })
    .await;
    add_fault(
        &sim,
        json!({ "endpoint": "upload", "kind": "advance_clock", "seconds": 3600, "count": 1 }),
    )
    .await;
    let site = Site::pages(30);
    let done = deploy(&client(&sim), "wide", &site, &assets_only())
        .await
        .expect("deploy");
    assert_eq!(
        done.stats.sessions, 2,
        "the buckets refused together renew once"
    );
    assert_eq!(done.stats.files, 30);
    assert_eq!(
        stats(&sim).await["files_uploaded"],
        30,
        "no file sent twice"
    );
}

#[tokio::test]
async fn a_server_that_never_completes_cannot_keep_us_forever() {
    let sim = spawn_sim().await;
    // Every upload JWT looks spent to a client with a margin above its life,
    // so each session is replaced before its first bucket goes up.
    let mut s = settings(&sim);
    s.jwt_expiry_margin = Duration::from_secs(2 * 3600);
    let err = deploy(&client_with(s), "loop", &Site::pages(2), &assets_only())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudflareError::TooManySessions { sessions: 10, .. }),
        "{err:?}"
    );
    let log = log(&sim).await;
    assert_eq!(log.len(), 10, "ten sessions, no upload: {log:?}");
}

#[tokio::test]
async fn an_upload_jwt_refused_every_time_ends_as_auth_error() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "upload", "kind": "status", "status": 401 }),
    )
    .await;
    let err = deploy(&client(&sim), "refused", &Site::pages(2), &assets_only())
        .await
        .unwrap_err();
    assert!(err.is_auth() && err.step() == CfStep::Upload, "{err}");
    let log = log(&sim).await;
    let count = |e: &str| log.iter().filter(|(x, ..)| x == e).count();
    assert_eq!(
        (count("session"), count("upload")),
        (4, 4),
        "three renewals, then give up"
    );
}

#[tokio::test]
async fn a_completion_jwt_about_to_expire_is_replaced_before_the_put() {
    let sim = spawn_sim().await;
    let site = Site::pages(3);
    let t = target("late");
    let uploader = client(&sim);
    let session = uploader
        .start_session(&t, &site.manifest)
        .await
        .expect("session");
    let assets = uploader
        .upload(&t, &site.manifest, &site, session)
        .await
        .expect("upload");
    // A margin longer than the JWT's life: the deployer sees it as spent.
    let mut s = settings(&sim);
    s.jwt_expiry_margin = Duration::from_secs(2 * 3600);
    let done = client_with(s)
        .deploy(&t, &site.manifest, &site, assets, &with_code())
        .await
        .expect("deploy");
    assert_eq!(done.stats.sessions, 2);
    let log = log(&sim).await;
    let scripts: Vec<_> = log
        .iter()
        .filter(|(e, ..)| e == "script")
        .map(|(_, s, _)| *s)
        .collect();
    assert_eq!(scripts, vec![Some(200)], "the stale JWT was never sent");
}

#[tokio::test]
async fn a_completion_jwt_refused_at_the_put_is_renewed_once() {
    let sim = spawn_sim().await;
    let site = Site::pages(3);
    let t = target("skewed");
    let client = client(&sim);
    let session = client
        .start_session(&t, &site.manifest)
        .await
        .expect("session");
    let assets = client
        .upload(&t, &site.manifest, &site, session)
        .await
        .expect("upload");
    advance_clock(&sim, 2 * 3600).await;
    let done = client
        .deploy(&t, &site.manifest, &site, assets, &with_code())
        .await
        .expect("deploy");
    assert_eq!(done.stats.sessions, 2);
    let tail: Vec<_> = log(&sim)
        .await
        .into_iter()
        .rev()
        .take(3)
        .rev()
        .map(|(e, s, _)| (e, s))
        .collect();
    assert_eq!(
        tail,
        vec![
            ("script".into(), Some(401)),
            ("session".into(), Some(200)),
            ("script".into(), Some(200))
        ]
    );
}
