//! When jobs are taken, acked and given back: bounded concurrency, ack only
//! after the terminal event is confirmed, graceful shutdown, reconnection.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_concurrency_deploys_run_at_once() {
    let (settings, _topology) = unique_settings();
    assert_eq!(settings.worker.concurrency, 2);
    let s = &settings.amqp;
    let (deployer, mut rx) = Scripted::new(true);
    let mut events = EventTap::bound(s, "deploy.succeeded").await;
    let worker = start_worker(&settings, deployer.clone()).await;
    for n in 0..5 {
        publish_job(
            s,
            &job_body(&format!("job-c{n}")),
            BasicProperties::default(),
        )
        .await;
    }
    entered(&mut rx).await;
    entered(&mut rx).await;
    // The broker still holds three: the worker has two deliveries, and no
    // deploy runs without one (none is settled while the gate is shut).
    wait_for_counts(&s.jobs_queue, (3, 2)).await;
    assert!(rx.try_recv().is_err(), "a third deploy started");
    assert_eq!(deployer.running.load(Ordering::SeqCst), 2);

    deployer.release(5);
    for _ in 0..5 {
        events.next().await;
    }
    assert_eq!(deployer.max_running.load(Ordering::SeqCst), 2);
    assert_eq!(deployer.calls().len(), 5);
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_acked_only_after_its_terminal_event_is_confirmed() {
    let (mut settings, _topology) = unique_settings();
    settings.worker.concurrency = 1;
    let s = &settings.amqp;
    let (deployer, mut rx) = Scripted::new(true);
    let mut events = EventTap::new(s).await;
    let worker = start_worker(&settings, deployer.clone()).await;
    let blocker = block_events(s, "deploy.succeeded").await;

    publish_job(s, &job_body("job-ack"), BasicProperties::default()).await;
    assert_eq!(entered(&mut rx).await, ("job-ack".to_string(), 1));
    wait_for_counts(&s.jobs_queue, (0, 1)).await; // unacked while deploying

    // The broker nacks the deploy.succeeded: the job must come back.
    deployer.release(1);
    assert_eq!(entered(&mut rx).await, ("job-ack".to_string(), 2));
    wait_for_counts(&s.jobs_queue, (0, 1)).await;
    let started: Vec<_> = [
        events.next().await,
        events.next().await,
        events.next().await,
    ]
    .into_iter()
    .filter(|e| e.routing_key == "deploy.started")
    .map(|e| e.data()["attempt"].clone())
    .collect();
    assert_eq!(started, vec![1, 2], "attempt 2 is 1 + x-delivery-count");

    unblock_events(blocker).await;
    deployer.release(1);
    let done = loop {
        let event = events.next().await;
        if event.routing_key == "deploy.succeeded" && event.data()["attempt"] == 2 {
            break event;
        }
    };
    assert_eq!(done.json["id"], "job-ack:succeeded");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    assert_eq!(deployer.calls().len(), 2);
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_deploy_finish_and_ack() {
    let (mut settings, _topology) = unique_settings();
    settings.worker.concurrency = 1;
    let s = &settings.amqp;
    let (deployer, mut rx) = Scripted::new(true);
    let mut events = EventTap::new(s).await;
    let mut worker = start_worker(&settings, deployer.clone()).await;
    publish_job(s, &job_body("job-inflight"), BasicProperties::default()).await;
    entered(&mut rx).await;

    worker.shutdown.cancel();
    // The moment run() returns, a marker goes to the tap: what the worker
    // published before is queued ahead of it, so the running deploy's
    // terminal event must come first.
    let (handle, ready) = (&mut worker.handle, &worker.ready);
    let returned = async {
        let ended = tokio::time::timeout(Duration::from_secs(30), handle).await;
        (ended, events.mark().await)
    };
    let finish_the_deploy = async {
        // It says it no longer consumes: it took the shutdown; the deploy runs.
        for _ in 0..150 {
            if !ready.is_ready() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!ready.is_ready(), "the worker stops consuming");
        publish_job(s, &job_body("job-late"), BasicProperties::default()).await;
        deployer.release(1);
    };
    let ((ended, marker), ()) = tokio::join!(returned, finish_the_deploy);
    ended
        .expect("run() returns within 30 s")
        .expect("worker task")
        .unwrap();

    assert_eq!(events.next().await.routing_key, "deploy.started");
    let done = events.next().await;
    assert_eq!(done.json["id"], "job-inflight:succeeded");
    let what = "run() returned before the running deploy's event, or took job-late";
    events.expect_marker(&marker, what).await;
    wait_for_counts(&s.jobs_queue, (1, 0)).await;
    assert_eq!(deployer.calls(), vec![("job-inflight".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_recovers_when_the_broker_cancels_its_consumer() {
    let (settings, _topology) = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::bound(s, "deploy.succeeded").await;
    let worker = start_worker(&settings, deployer).await;

    let (_c, ch) = channel(s).await;
    let options = lapin::options::QueueDeleteOptions::default();
    ch.queue_delete(s.jobs_queue.as_str().into(), options)
        .await
        .unwrap();
    // The worker re-declares the queue and consumes again.
    wait_for_consumers(s, &s.jobs_queue, 1).await;
    publish_job(s, &job_body("job-again"), BasicProperties::default()).await;
    assert_eq!(events.next().await.json["id"], "job-again:succeeded");
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_loses_no_job() {
    let (settings, _topology) = unique_settings();
    let s = &settings.amqp;
    let (deployer, mut rx) = Scripted::new(true);
    let mut events = EventTap::bound(s, "deploy.succeeded").await;
    let worker = start_worker(&settings, deployer.clone()).await;
    publish_job(s, &job_body("job-drop"), BasicProperties::default()).await;
    assert_eq!(entered(&mut rx).await, ("job-drop".to_string(), 1));

    let closed = force_close_worker_connections(&settings.worker.instance).await;
    assert_eq!(closed, 1, "the worker's one connection");
    // The broker returned the unacked job; the reconnected worker takes it again.
    assert_eq!(entered(&mut rx).await, ("job-drop".to_string(), 2));
    deployer.release(2);
    let done = events.next().await;
    assert_eq!(done.data()["attempt"], 2);
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    assert!(worker.ready.is_ready());
    // Stopped, the worker has finished attempt 1 too (on the dead connection).
    worker.stop().await.unwrap();
    events
        .assert_drained("attempt 1's event cannot have been sent")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_deploy_runs_before_its_started_event_is_confirmed() {
    let (mut settings, _topology) = unique_settings();
    settings.worker.concurrency = 1;
    let s = &settings.amqp;
    let (deployer, mut rx) = Scripted::new(false);
    let mut events = EventTap::bound(s, "deploy.succeeded").await;
    let mut started = EventTap::bound(s, "deploy.started").await;
    let worker = start_worker(&settings, deployer.clone()).await;
    let blocker = block_events(s, "deploy.started").await;

    publish_job(s, &job_body("job-unstarted"), BasicProperties::default()).await;
    // The tap gets a copy of each refused deploy.started. Attempt 2's comes
    // only after attempt 1 was given back, which is after its deploy would
    // have begun: the job went back, never deployed.
    assert_eq!(started.next().await.data()["attempt"], 1);
    assert_eq!(started.next().await.data()["attempt"], 2);
    assert!(
        rx.try_recv().is_err(),
        "a deploy ran without its started event"
    );
    assert!(deployer.calls().is_empty());

    unblock_events(blocker).await;
    let (job, attempt) = entered(&mut rx).await;
    assert_eq!(job, "job-unstarted");
    assert!(attempt >= 2, "it came back: attempt {attempt}");
    assert_eq!(events.next().await.json["id"], "job-unstarted:succeeded");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
}
