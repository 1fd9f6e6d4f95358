//! The events log: a stream queue the worker declares and binds to the
//! events exchange, from which a consumer that was not there when the
//! events were published reads them back, from the first or from an
//! offset, as often as it likes.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};

use super::{app, stop};
use crate::helpers::amqp::connect;
use crate::helpers::app::TestApp;

/// The ids of the first `count` events in the log from `offset` (a
/// stream offset: `first`, or a number), read as a stream consumer must:
/// with a prefetch and manual acks.
pub(super) async fn read_log(app: &TestApp, offset: AMQPValue, count: usize) -> Vec<String> {
    let connection = connect(&app.settings.amqp).await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .basic_qos(16, BasicQosOptions::default())
        .await
        .expect("a stream consumer needs a prefetch");
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), offset);
    let mut consumer = channel
        .basic_consume(
            app.settings.amqp.events_log_queue.as_str().into(),
            "log-reader".into(),
            BasicConsumeOptions::default(),
            args,
        )
        .await
        .expect("consume the events log");
    let mut ids = Vec::new();
    while ids.len() < count {
        let delivery = tokio::time::timeout(Duration::from_secs(15), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {ids:?} in the log within 15 s"))
            .expect("the log's consumer ended")
            .expect("a delivery");
        let event: serde_json::Value = serde_json::from_slice(&delivery.data).expect("JSON");
        ids.push(event["id"].as_str().unwrap_or_default().to_string());
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let _ = connection.close(200, "done".into()).await;
    ids
}

#[tokio::test]
async fn every_event_is_kept_in_the_log_and_replayed_to_a_late_reader() {
    // No progress events: the log's offsets below count the others only.
    let mut app = app(|s| s.events.progress = false).await;
    app.bucket.put("l/index.html", b"<p>l</p>".to_vec()).await;
    app.deploy_ok(&app.job("logged-1", "logged", "l/")).await;
    app.publish_raw(
        b"not a job",
        lapin::BasicProperties::default().with_message_id("junk-1".into()),
    )
    .await;
    app.terminal_event().await;

    // Nobody read the log while this happened; a reader now gets it all.
    let all = ["logged-1:started:1", "logged-1:succeeded", "junk-1:failed"];
    let first = AMQPValue::LongString(LongString::from("first"));
    assert_eq!(read_log(&app, first.clone(), 3).await, all);
    // Reading does not consume: a second reader gets the same, and one
    // starting from an offset skips what came before it.
    assert_eq!(read_log(&app, first, 3).await, all);
    assert_eq!(read_log(&app, AMQPValue::LongLongInt(1), 2).await, all[1..]);

    // Declared a stream kept for events.log_max_age: the same declaration
    // again is accepted (another would be refused as inequivalent).
    let connection = connect(&app.settings.amqp).await;
    let channel = connection.create_channel().await.expect("channel");
    let durable = lapin::options::QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let args = wfp_deployer::amqp::events_log_arguments(app.settings.events.log_max_age);
    channel
        .queue_declare(
            app.settings.amqp.events_log_queue.as_str().into(),
            durable,
            args,
        )
        .await
        .expect("the log has the arguments the settings give");
    let _ = connection.close(200, "done".into()).await;
    stop(app).await;
}
