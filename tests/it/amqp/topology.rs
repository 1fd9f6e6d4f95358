//! The contract v1 topology as declared, set-ups the worker refuses to retry,
//! and the confirmed publisher on its own.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_is_declared_as_the_contract_says() {
    let (mut s, _topology) = unique_amqp_settings();
    s.delivery_limit = 1;
    let (_c, ch) = channel(&s).await;
    amqp::declare_topology(&ch, &s).await.unwrap();
    amqp::declare_topology(&ch, &s)
        .await
        .expect("declaring twice is fine");

    // The exact arguments are accepted again; any other value or type is not.
    let jobs_args = amqp::jobs_queue_arguments(&s);
    assert_eq!(
        queue_declare_code(&s, &s.jobs_queue, jobs_args.clone()).await,
        None
    );
    let mut classic = jobs_args.clone();
    classic.insert("x-queue-type".into(), text("classic"));
    assert_eq!(
        queue_declare_code(&s, &s.jobs_queue, classic).await,
        Some(406),
        "quorum"
    );
    let mut other_limit = jobs_args.clone();
    other_limit.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(2));
    assert_eq!(
        queue_declare_code(&s, &s.jobs_queue, other_limit).await,
        Some(406)
    );
    let dlq_args = amqp::dead_letter_queue_arguments();
    assert_eq!(
        queue_declare_code(&s, &s.dead_letter_queue, dlq_args).await,
        None
    );
    let mut classic_dlq = FieldTable::default();
    classic_dlq.insert("x-queue-type".into(), text("classic"));
    assert_eq!(
        queue_declare_code(&s, &s.dead_letter_queue, classic_dlq).await,
        Some(406)
    );

    // Exchange kinds: direct jobs, fanout DLX, topic events.
    let kinds = [
        (&s.jobs_exchange, ExchangeKind::Direct, ExchangeKind::Topic),
        (
            &s.dead_letter_exchange,
            ExchangeKind::Fanout,
            ExchangeKind::Direct,
        ),
        (
            &s.events_exchange,
            ExchangeKind::Topic,
            ExchangeKind::Fanout,
        ),
    ];
    for (name, right, wrong) in kinds {
        assert_eq!(exchange_declare_code(&s, name, right).await, None, "{name}");
        assert_eq!(
            exchange_declare_code(&s, name, wrong).await,
            Some(406),
            "{name}"
        );
    }

    // Bindings: `deploy` routes to the jobs queue; anything on the DLX to the
    // DLQ. Confirmed and mandatory: a routed message is queued once
    // confirmed, an unroutable one comes back with its confirm.
    let (_pc, publisher) = channel(&s).await;
    publisher
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    let publish = |exchange: String, key: &'static str| {
        let ch = publisher.clone();
        async move {
            let options = BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            };
            let props = BasicProperties::default();
            let confirm = ch.basic_publish(exchange.into(), key.into(), options, b"{}", props);
            let routed = confirm.await.unwrap().await.unwrap();
            matches!(routed, lapin::Confirmation::Ack(None))
        }
    };
    assert!(publish(s.jobs_exchange.clone(), "deploy").await);
    assert!(!publish(s.jobs_exchange.clone(), "elsewhere").await);
    assert!(publish(s.dead_letter_exchange.clone(), "any-key").await);
    assert_eq!(queue_depth(&s, &s.jobs_queue).await, 1);
    assert_eq!(queue_depth(&s, &s.dead_letter_queue).await, 1);

    // Past the delivery limit, a returned job is dead-lettered to the DLQ.
    for _ in 0..5 {
        let options = BasicGetOptions { no_ack: false };
        let Some(message) = ch
            .basic_get(s.jobs_queue.as_str().into(), options)
            .await
            .unwrap()
        else {
            break;
        };
        let requeue = BasicNackOptions {
            requeue: true,
            multiple: false,
        };
        message.delivery.acker.nack(requeue).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queue_depth(&s, &s.jobs_queue).await, 0);
    assert_eq!(queue_depth(&s, &s.dead_letter_queue).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_declared_with_other_arguments_stops_the_worker_with_a_clear_error() {
    let (settings, _topology) = unique_settings();
    let mut classic = FieldTable::default();
    classic.insert("x-queue-type".into(), text("classic"));
    assert_eq!(
        queue_declare_code(&settings.amqp, &settings.amqp.jobs_queue, classic).await,
        None
    );

    let (deployer, _rx) = Scripted::new(false);
    wfp_deployer::telemetry::init_for_tests();
    let worker = Worker::new(&settings, deployer);
    let run = worker.run(tokio_util::sync::CancellationToken::new());
    let err = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("a refused topology is not retried")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("queue {}", settings.amqp.jobs_queue)),
        "{err}"
    );
    assert!(err.contains("other arguments"), "{err}");
    assert!(err.contains("PRECONDITION"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_worker_without_showing_the_password() {
    let (mut settings, _topology) = unique_settings();
    settings.amqp.url = "amqp://guest:pw-wrong-secret@127.0.0.1:5672/%2f"
        .to_string()
        .into();
    let (deployer, _rx) = Scripted::new(false);
    wfp_deployer::telemetry::init_for_tests();
    let run = Worker::new(&settings, deployer).run(tokio_util::sync::CancellationToken::new());
    let err = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("refused credentials are not retried")
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:5672"), "{err}");
    assert!(!err.contains("pw-wrong-secret"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_reports_nacks_and_survives_a_closed_channel() {
    let (s, _topology) = unique_amqp_settings();
    let (_c, ch) = channel(&s).await;
    amqp::declare_topology(&ch, &s).await.unwrap();
    let connection = Arc::new(connect(&s).await);
    let publisher = ConfirmedPublisher::open(connection, s.confirm_timeout)
        .await
        .unwrap();
    let props = BasicProperties::default;

    let missing = format!("{}.missing", s.events_exchange);
    let err = publisher
        .publish(&missing, "deploy.started", b"{}", props())
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&missing), "{err}");
    // The broker closed that channel; the next publish gets a fresh one.
    publisher
        .publish(&s.events_exchange, "deploy.started", b"{}", props())
        .await
        .unwrap();

    let _blocker = block_events(&s, "deploy.failed").await;
    let err = publisher
        .publish(&s.events_exchange, "deploy.failed", b"{}", props())
        .await;
    assert!(matches!(err, Err(PublishError::Nacked { .. })), "{err:?}");
    publisher.close().await;
}
