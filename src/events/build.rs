//! The events' bodies: built from a job (or an invalid message) and how its
//! deploy ended, in the contract's terms only.
//!
//! The job's fields and attempt are gathered once per delivery
//! ([`EventBuilder::job`]) and every event of that job starts from them, so
//! `deploy.started` and the terminal event cannot disagree (on the account,
//! say).

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::Event;
use crate::amqp::DeliveryMeta;
use crate::contract::names::is_job_id;
use crate::contract::quote::bounded;
use crate::contract::{
    CloudEvent, DeployJob, EventData, EventKind, FailureInfo, InvalidJob, JobFields,
    MAX_ERROR_MESSAGE_BYTES, ProgressData, Success,
};

/// Builds events for one worker instance.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    instance: String,
}

impl EventBuilder {
    /// `instance` names the publishing worker in each event's `source`.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
        }
    }

    /// The events of one valid job deploying into `account_id` (resolved
    /// once, before `deploy.started`, by whoever runs the job).
    pub fn job(&self, job: &DeployJob, account_id: &str, meta: &DeliveryMeta) -> JobEvents<'_> {
        let fields = JobFields {
            job_id: job.job_id.clone(),
            // The job's own id wins; the AMQP one is the fallback, so event
            // body and properties always agree.
            correlation_id: job
                .correlation_id
                .clone()
                .or_else(|| meta.correlation_id.clone()),
            labels: job.labels.clone(),
            account_id: Some(account_id.to_string()),
            namespace: Some(job.namespace.clone()),
            script_name: Some(job.script_name.clone()),
        };
        JobEvents {
            builder: self,
            data: EventData::new(fields, meta.attempt),
        }
    }

    /// `deploy.failed` for a message that is not a valid job: `invalid_job`
    /// at `validate`, not retryable, under the best id the message offers.
    pub fn invalid(
        &self,
        invalid: &InvalidJob,
        meta: &DeliveryMeta,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Event {
        let fields = JobFields {
            job_id: invalid_job_id(invalid, meta),
            correlation_id: invalid
                .correlation_id
                .clone()
                .or_else(|| meta.correlation_id.clone()),
            labels: invalid.labels.clone(),
            account_id: None,
            namespace: invalid.namespace.clone(),
            script_name: invalid.script_name.clone(),
        };
        let data = EventData {
            duration_ms: Some(millis(duration)),
            error: Some(FailureInfo::invalid_job(invalid.message.clone())),
            ..EventData::new(fields, meta.attempt)
        };
        self.event(EventKind::Failed, data, now)
    }

    /// Every event passes here: its `error.message` is cut to
    /// [`MAX_ERROR_MESSAGE_BYTES`], so an event always fits the broker's
    /// message size limit, whatever a failure quotes.
    fn event(&self, kind: EventKind, mut data: EventData, now: DateTime<Utc>) -> Event {
        if let Some(error) = &mut data.error
            && let Cow::Owned(cut) = bounded(&error.message, MAX_ERROR_MESSAGE_BYTES)
        {
            error.message = cut;
        }
        Event {
            kind,
            body: CloudEvent::new(kind, &self.instance, data, now),
        }
    }
}

/// The events of one valid job: what they all share, gathered once.
#[derive(Debug, Clone)]
pub struct JobEvents<'a> {
    builder: &'a EventBuilder,
    data: EventData,
}

impl JobEvents<'_> {
    /// `deploy.started`: the job's fields and the attempt.
    pub fn started(&self, now: DateTime<Utc>) -> Event {
        self.builder
            .event(EventKind::Started, self.data.clone(), now)
    }

    /// `deploy.retrying`: this attempt failed with `failure` (retryable) and
    /// the job is due again at `next_attempt_at`.
    pub fn retrying(
        &self,
        failure: &FailureInfo,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Event {
        let data = EventData {
            error: Some(failure.clone()),
            next_attempt_at: Some(next_attempt_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ..self.data.clone()
        };
        self.builder.event(EventKind::Retrying, data, now)
    }

    /// `deploy.progress`: how far the attempt got, numbered by its runner
    /// (`progress.sequence`).
    pub fn progress(&self, progress: ProgressData, now: DateTime<Utc>) -> Event {
        let data = EventData {
            progress,
            ..self.data.clone()
        };
        self.builder.event(EventKind::Progress, data, now)
    }

    /// `deploy.succeeded` or `deploy.failed`, from how the deploy ended and
    /// how long the job took.
    pub fn terminal(
        &self,
        result: &Result<Success, FailureInfo>,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Event {
        let mut data = EventData {
            duration_ms: Some(millis(duration)),
            ..self.data.clone()
        };
        let kind = match result {
            Ok(success) => {
                data.manifest = Some(success.manifest.clone());
                data.upload = Some(success.upload.clone());
                data.deployment = Some(success.deployment.clone());
                EventKind::Succeeded
            }
            Err(failure) => {
                data.error = Some(failure.clone());
                EventKind::Failed
            }
        };
        self.builder.event(kind, data, now)
    }
}

/// The id an invalid message is reported under: its readable `job_id`, else
/// its AMQP `message_id`, else a fresh UUID so the event still has one.
pub(super) fn invalid_job_id(invalid: &InvalidJob, meta: &DeliveryMeta) -> String {
    invalid
        .job_id
        .clone()
        .or_else(|| {
            // `DeliveryMeta::of` already keeps only a valid one; checked
            // again because a longer id would make event ids that do not
            // fit AMQP's 255-byte short strings.
            meta.message_id.clone().filter(|id| is_job_id(id))
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
