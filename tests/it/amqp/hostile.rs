//! Jobs a hostile tenant would publish: values sized to blow up error
//! messages and events, AMQP ids carrying line breaks and escapes,
//! duplicate keys. Each gets a small, clean `deploy.failed` (or its
//! properties are ignored), and the worker keeps serving.

use super::*;

/// Bytes of an event as published (its JSON, re-serialized the same way).
fn size(event: &TappedEvent) -> usize {
    serde_json::to_vec(&event.json).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_namespace_gets_a_small_failed_event_naming_the_field() {
    // Regression: a 10 MB namespace gave a 37 MB deploy.failed event (and
    // at 40 MB one the broker refused, so the job had no event at all).
    let (mut settings, _topology) = unique_settings();
    settings.amqp.max_job_bytes = 16 * 1024 * 1024;
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::bound(s, "deploy.failed").await;
    let worker = start_worker(&settings, deployer.clone()).await;

    let mut body: serde_json::Value = serde_json::from_slice(&job_body("huge-ns-1")).unwrap();
    // DEL: one byte in JSON, six in Rust's escaped quoting.
    body["namespace"] = "\u{7f}".repeat(10 * 1024 * 1024).into();
    publish_job(s, body.to_string().as_bytes(), BasicProperties::default()).await;

    let failed = events.next().await;
    assert_eq!(failed.json["id"], "huge-ns-1:failed");
    assert!(size(&failed) < 16 * 1024, "{} bytes", size(&failed));
    let message = failed.data()["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("namespace: \"\\u{7f}"), "{message}");
    assert!(
        message.contains("(10485760 characters in all)"),
        "{message}"
    );
    assert_eq!(failed.data()["error"]["code"], "invalid_job");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
    assert!(deployer.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_ids_breaking_the_contract_rules_are_ignored() {
    // Regression: the AMQP correlation_id and message_id fallbacks reached
    // events with CR/LF and escape characters in them.
    let (settings, _topology) = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::new(s).await;
    let worker = start_worker(&settings, deployer.clone()).await;

    let forged = BasicProperties::default()
        .with_message_id("m-1\r\nx-forged: yes".into())
        .with_correlation_id("corr\u{1b}[31m\r\n".into());
    publish_job(s, b"{not json", forged.clone()).await;
    let failed = events.next().await;
    let id = failed.data()["job_id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a generated id: {id}");
    assert_eq!(failed.data()["correlation_id"], serde_json::Value::Null);
    assert_eq!(*failed.properties.correlation_id(), None);

    publish_job(s, &job_body("ids-ok-1"), forged).await;
    let started = events.next().await;
    assert_eq!(started.data()["job_id"], "ids-ok-1");
    assert_eq!(started.data()["correlation_id"], serde_json::Value::Null);
    let done = events.next().await;
    assert_eq!(done.routing_key, "deploy.succeeded");
    assert_eq!(*done.properties.correlation_id(), None);

    // Valid ones still stand in for the body's.
    let fine = BasicProperties::default()
        .with_message_id("m-fine".into())
        .with_correlation_id("corr fine/ü".into());
    publish_job(s, b"{not json", fine).await;
    let failed = events.next().await;
    assert_eq!(failed.data()["job_id"], "m-fine");
    assert_eq!(failed.data()["correlation_id"], "corr fine/ü");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_a_duplicate_key_is_invalid_and_not_deployed() {
    // Regression: the last of two equal keys won, so a job could say one
    // namespace to a proxy's checks and deploy into another.
    let (settings, _topology) = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::bound(s, "deploy.failed").await;
    let worker = start_worker(&settings, deployer.clone()).await;

    let body = String::from_utf8(job_body("dup-1")).unwrap();
    let body = body.replacen("{", r#"{"namespace":"other","#, 1);
    let props = BasicProperties::default().with_message_id("dup-1".into());
    publish_job(s, body.as_bytes(), props).await;
    let failed = events.next().await;
    assert_eq!(failed.json["id"], "dup-1:failed");
    assert_eq!(failed.data()["error"]["code"], "invalid_job");
    let message = failed.data()["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("job: duplicate key \"namespace\""),
        "{message}"
    );
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
    assert!(deployer.calls().is_empty());
}
