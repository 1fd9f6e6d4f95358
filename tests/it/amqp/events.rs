//! What the worker publishes for each kind of job (valid, invalid, failed,
//! panicking, with `reply_to`), with the contract's AMQP properties.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_gets_started_then_succeeded_with_the_contract_properties_then_is_acked() {
    let (settings, _topology) = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::new(s).await;
    let worker = start_worker(&settings, deployer.clone()).await;

    let props = BasicProperties::default()
        .with_message_id("msg-1".into())
        .with_correlation_id("corr-1".into());
    publish_job(s, &job_body("job-ok-1"), props).await;
    let before = chrono::Utc::now().timestamp() as u64;

    let started = events.next().await;
    assert_eq!(started.routing_key, "deploy.started");
    assert_eq!(started.json["type"], "wfp.deploy.started");
    assert_eq!(started.json["id"], "job-ok-1:started:1");
    assert_eq!(
        started.json["source"],
        format!("/wfp-deployer/{}", settings.worker.instance)
    );
    assert_eq!(started.data()["attempt"], 1);
    assert_eq!(started.data()["account_id"], TEST_ACCOUNT);
    assert_eq!(
        started.data()["correlation_id"],
        "corr-1",
        "the AMQP id is the fallback"
    );
    assert!(started.data().get("duration_ms").is_none());

    let done = events.next().await;
    assert_eq!(done.routing_key, "deploy.succeeded");
    assert_eq!(done.json["id"], "job-ok-1:succeeded");
    assert_eq!(done.data()["duration_ms"], 12);
    assert_eq!(done.data()["manifest"]["files"], 3);
    assert_eq!(done.data()["upload"]["buckets"], 1);
    assert_eq!(done.data()["deployment"]["id"], "dep-1");

    for event in [&started, &done] {
        let p = &event.properties;
        let short = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|v| v.to_string());
        assert_eq!(
            short(p.content_type()).as_deref(),
            Some("application/cloudevents+json")
        );
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(
            short(p.message_id()),
            event.json["id"].as_str().map(String::from)
        );
        assert_eq!(
            short(p.kind()),
            event.json["type"].as_str().map(String::from)
        );
        assert_eq!(short(p.correlation_id()).as_deref(), Some("corr-1"));
        assert_eq!(short(p.app_id()).as_deref(), Some("wfp-deployer"));
        let at = p.timestamp().expect("timestamp");
        assert!(at + 60 >= before && at <= before + 60, "timestamp {at}");
        assert_eq!(event.header("job_id").as_deref(), Some("job-ok-1"));
        assert_eq!(event.header("namespace").as_deref(), Some("customers"));
        assert_eq!(
            event.header("script_name").as_deref(),
            Some("site-job-ok-1")
        );
    }
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
    events.assert_drained("exactly two events").await;
    assert_eq!(deployer.calls(), vec![("job-ok-1".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_jobs_fail_under_their_readable_id_and_the_worker_keeps_serving() {
    let (settings, _topology) = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::new(s).await;
    let worker = start_worker(&settings, deployer.clone()).await;

    let not_json = BasicProperties::default().with_message_id("m-not-json".into());
    publish_job(s, b"{not json", not_json).await;
    let failed = events.next().await;
    assert_eq!(failed.routing_key, "deploy.failed");
    assert_eq!(failed.json["id"], "m-not-json:failed");
    assert_eq!(failed.data()["job_id"], "m-not-json", "the AMQP message_id");
    let error = &failed.data()["error"];
    assert_eq!(error["code"], "invalid_job");
    assert_eq!(error["step"], "validate");
    assert_eq!(error["retryable"], false);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{error}"
    );
    assert_eq!(failed.header("job_id").as_deref(), Some("m-not-json"));

    let schema_break = br#"{"version":1,"job_id":"bad-1","namespace":"Bad Name",
        "script_name":"s","bundle":{"bucket":"sites","prefix":"p/"}}"#;
    let with_id = BasicProperties::default().with_message_id("m-ignored".into());
    publish_job(s, schema_break, with_id).await;
    let failed = events.next().await;
    assert_eq!(failed.data()["job_id"], "bad-1", "the body's own id wins");
    assert!(
        failed.data()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("namespace")
    );

    publish_job(s, b"[]", BasicProperties::default()).await;
    let failed = events.next().await;
    let id = failed.data()["job_id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a generated id: {id}");

    publish_job(s, &job_body("job-after"), BasicProperties::default()).await;
    assert_eq!(events.next().await.routing_key, "deploy.started");
    assert_eq!(events.next().await.routing_key, "deploy.succeeded");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    assert_eq!(deployer.calls(), vec![("job-after".to_string(), 1)]);
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_to_gets_the_terminal_event_only() {
    let (settings, _topology) = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::new(s).await;
    let mut replies = EventTap::queue(s).await;
    let worker = start_worker(&settings, deployer).await;

    let props = BasicProperties::default().with_reply_to(replies.name().into());
    publish_job(s, &job_body("fail-reply"), props).await;
    assert_eq!(events.next().await.routing_key, "deploy.started");
    let failed = events.next().await;
    assert_eq!(failed.routing_key, "deploy.failed");
    assert_eq!(failed.data()["error"]["code"], "cloudflare_rejected");

    let reply = replies.next().await;
    assert_eq!(
        reply.routing_key,
        replies.name(),
        "sent through the default exchange"
    );
    assert_eq!(reply.json, failed.json);
    assert_eq!(
        reply.properties.message_id(),
        failed.properties.message_id()
    );
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
    replies.assert_drained("no started copy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_panicking_deploys_are_reported_and_acked() {
    let (settings, _topology) = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::bound(s, "deploy.failed").await;
    let worker = start_worker(&settings, deployer).await;

    publish_job(s, &job_body("fail-1"), BasicProperties::default()).await;
    let failed = events.next().await;
    assert_eq!(failed.data()["error"]["code"], "cloudflare_rejected");
    assert_eq!(failed.data()["error"]["retryable"], false);
    publish_job(s, &job_body("panic-1"), BasicProperties::default()).await;
    let failed = events.next().await;
    assert_eq!(failed.data()["job_id"], "panic-1");
    assert_eq!(failed.data()["error"]["code"], "internal");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    assert!(worker.ready.is_ready(), "the worker survived the panic");
    worker.stop().await.unwrap();
}
