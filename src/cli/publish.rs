//! `wfp-deployer publish JOB.json [--wait 2m]`: what a platform service does,
//! from the command line.
//!
//! Publishes the job to the jobs exchange with publisher confirms. With
//! `--wait`, it sets `reply_to` to a private queue of its own and prints the
//! terminal event that arrives there, exiting non-zero unless the deploy
//! succeeded.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use crate::amqp::{ConfirmedPublisher, connect, declare_topology};
use crate::config::Settings;
use crate::contract::{CloudEvent, decode_job};

#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// The job (contract v1 JSON); `-` reads standard input.
    pub job: PathBuf,
    /// Wait this long for the terminal event and print it (e.g. `2m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,
}

pub async fn run(settings: &Settings, args: &PublishArgs) -> anyhow::Result<()> {
    let body = super::read_input(&args.job)?;
    // Check it here: a producer should learn of a bad job before it is queued.
    let job = decode_job(&body).map_err(|e| anyhow::anyhow!("{}: {e}", args.job.display()))?;
    let amqp = &settings.amqp;
    let connection = Arc::new(connect(amqp).await?);
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    declare_topology(&channel, amqp).await?;

    let mut replies = None;
    let mut properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(job.job_id.as_str().into());
    if let Some(id) = &job.correlation_id {
        properties = properties.with_correlation_id(id.as_str().into());
    }
    if args.wait.is_some() {
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("declaring the reply queue")?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "wfp-deployer-publish".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("consuming the reply queue")?;
        properties = properties.with_reply_to(queue.name().clone());
        replies = Some(consumer);
    }

    let publisher = ConfirmedPublisher::open(connection.clone(), amqp.confirm_timeout).await?;
    publisher
        .publish(
            &amqp.jobs_exchange,
            &amqp.jobs_routing_key,
            &body,
            properties,
        )
        .await?;
    eprintln!("published job {} to {}", job.job_id, amqp.jobs_exchange);

    let (Some(wait), Some(mut replies)) = (args.wait, replies) else {
        return Ok(());
    };
    let delivery = tokio::time::timeout(wait, replies.next())
        .await
        .with_context(|| format!("no outcome for job {} within {wait:?}", job.job_id))?
        .context("the reply queue closed")?
        .context("reading the reply")?;
    let _ = delivery.ack(BasicAckOptions::default()).await;
    let event: CloudEvent =
        serde_json::from_slice(&delivery.data).context("the outcome is not a CloudEvent")?;
    println!("{}", serde_json::to_string_pretty(&event)?);
    let _ = connection.close(200, "done".into()).await;
    match &event.data.error {
        None => Ok(()),
        Some(error) => bail!(
            "job {} failed: {}: {}",
            job.job_id,
            error.code,
            error.message
        ),
    }
}
