//! Queue depths for the console, from RabbitMQ's management HTTP API.
//!
//! AMQP cannot tell how many messages are delivered but unacked, nor list
//! queues by name, so the depths of the jobs queue, the delay queues
//! (`<jobs_queue>.retry.<delay>`), the dead-letter queue and the events log
//! come from `GET /api/queues/{vhost}`. Where that API is not reachable (the
//! plugin off, other credentials), the jobs and dead-letter queues' ready
//! counts still come over AMQP (passive declarations), and the page says
//! what is missing and why.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::amqp::connect;
use crate::config::{AmqpSettings, ConsoleSettings};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What a queue is to the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Jobs,
    Delay,
    DeadLetter,
    EventsLog,
}

/// One queue's depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub name: String,
    pub role: Role,
    /// Ready and unacked together; `None` when only part is known.
    pub messages: Option<u64>,
    pub ready: Option<u64>,
    pub unacked: Option<u64>,
    pub consumers: Option<u64>,
}

/// The depths, where they came from, and what could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queues {
    /// `management` or `amqp`.
    pub source: &'static str,
    pub queues: Vec<QueueDepth>,
    pub error: Option<String>,
}

/// A queue as `/api/queues` lists it; counters are absent until the broker
/// has collected its first statistics.
#[derive(Debug, Deserialize)]
struct ApiQueue {
    name: String,
    messages: Option<u64>,
    messages_ready: Option<u64>,
    messages_unacknowledged: Option<u64>,
    consumers: Option<u64>,
}

/// The management API client for one vhost.
pub struct Management {
    client: reqwest::Client,
    url: Result<reqwest::Url, String>,
    user: String,
    password: SecretString,
    amqp: AmqpSettings,
}

impl Management {
    /// Credentials default to the AMQP URL's; the vhost is the AMQP URL's.
    pub fn new(console: &ConsoleSettings, amqp: &AmqpSettings) -> Self {
        let uri: Option<AMQPUri> = amqp.url.expose_secret().parse().ok();
        let (vhost, user, password) = match &uri {
            Some(uri) => (
                uri.vhost.clone(),
                uri.authority.userinfo.username.clone(),
                uri.authority.userinfo.password.clone(),
            ),
            None => ("/".into(), "guest".into(), "guest".into()),
        };
        let url = reqwest::Url::parse(&console.management_url)
            .map_err(|e| format!("console.management_url: {e}"))
            .and_then(|mut url| {
                url.path_segments_mut()
                    .map_err(|()| "console.management_url cannot take a path".to_string())?
                    .pop_if_empty()
                    .extend(["api", "queues", &vhost]);
                Ok(url)
            });
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            client,
            url,
            user: console.management_user.clone().unwrap_or(user),
            password: console
                .management_password
                .clone()
                .unwrap_or_else(|| SecretString::from(password)),
            amqp: amqp.clone(),
        }
    }

    fn role(&self, name: &str) -> Option<Role> {
        let a = &self.amqp;
        if name == a.jobs_queue {
            Some(Role::Jobs)
        } else if name
            .strip_prefix(a.jobs_queue.as_str())
            .is_some_and(|rest| rest.starts_with(".retry."))
        {
            Some(Role::Delay)
        } else if name == a.dead_letter_queue {
            Some(Role::DeadLetter)
        } else if name == a.events_log_queue {
            Some(Role::EventsLog)
        } else {
            None
        }
    }

    /// The worker's queues, jobs first, then the delay queues, the
    /// dead-letter queue and the log.
    pub async fn queues(&self) -> Queues {
        match self.read_api().await {
            Ok(queues) => Queues {
                source: "management",
                queues,
                error: None,
            },
            Err(error) => Queues {
                source: "amqp",
                queues: self.read_amqp().await,
                error: Some(format!(
                    "management API: {error}; showing ready messages over AMQP \
                     (enable rabbitmq_management, or set console.management_url)"
                )),
            },
        }
    }

    async fn read_api(&self) -> Result<Vec<QueueDepth>, String> {
        let mut url = self.url.clone()?;
        url.query_pairs_mut().append_pair(
            "columns",
            "name,messages,messages_ready,messages_unacknowledged,consumers",
        );
        let response = self
            .client
            .get(url)
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .send()
            .await
            .map_err(|e| crate::error_chain::flatten(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status} from {}", self.console_url()));
        }
        let listed: Vec<ApiQueue> = response
            .json()
            .await
            .map_err(|e| format!("unreadable answer: {e}"))?;
        let mut queues: Vec<QueueDepth> = listed
            .into_iter()
            .filter_map(|q| {
                Some(QueueDepth {
                    role: self.role(&q.name)?,
                    name: q.name,
                    messages: q.messages,
                    ready: q.messages_ready,
                    unacked: q.messages_unacknowledged,
                    consumers: q.consumers,
                })
            })
            .collect();
        queues.sort_by(|a, b| (a.role as u8, &a.name).cmp(&(b.role as u8, &b.name)));
        Ok(queues)
    }

    fn console_url(&self) -> String {
        self.url
            .as_ref()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// Ready counts of the jobs and dead-letter queues by passive declares.
    async fn read_amqp(&self) -> Vec<QueueDepth> {
        let Ok(connection) = connect(&self.amqp).await else {
            return Vec::new();
        };
        let mut depths = Vec::new();
        for (name, role) in [
            (&self.amqp.jobs_queue, Role::Jobs),
            (&self.amqp.dead_letter_queue, Role::DeadLetter),
        ] {
            let Ok(channel) = connection.create_channel().await else {
                continue;
            };
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            if let Ok(queue) = channel
                .queue_declare(name.as_str().into(), passive, FieldTable::default())
                .await
            {
                depths.push(QueueDepth {
                    name: name.clone(),
                    role,
                    messages: None,
                    ready: Some(u64::from(queue.message_count())),
                    unacked: None,
                    consumers: Some(u64::from(queue.consumer_count())),
                });
                let _ = channel.close(200, "done".into()).await;
            }
        }
        let _ = connection.close(200, "done".into()).await;
        depths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn management(url: &str) -> Management {
        let console = ConsoleSettings {
            management_url: url.into(),
            ..ConsoleSettings::default()
        };
        let amqp = AmqpSettings {
            url: SecretString::from("amqp://ops:s3cret@broker:5672/prod"),
            ..AmqpSettings::default()
        };
        Management::new(&console, &amqp)
    }

    #[test]
    fn the_url_names_the_vhost_and_credentials_follow_the_amqp_url() {
        let m = management("http://broker:15672/");
        assert_eq!(
            m.url.as_ref().unwrap().as_str(),
            "http://broker:15672/api/queues/prod"
        );
        assert_eq!(m.user, "ops");
        assert_eq!(m.password.expose_secret(), "s3cret");
        let m = Management::new(&ConsoleSettings::default(), &AmqpSettings::default());
        assert_eq!(
            m.url.unwrap().as_str(),
            "http://127.0.0.1:15672/api/queues/%2F"
        );
    }

    #[test]
    fn queues_are_known_by_their_role() {
        let m = management("http://broker:15672");
        assert_eq!(m.role("wfp.deploy.jobs"), Some(Role::Jobs));
        assert_eq!(m.role("wfp.deploy.jobs.retry.10s"), Some(Role::Delay));
        assert_eq!(m.role("wfp.deploy.jobs.dlq"), Some(Role::DeadLetter));
        assert_eq!(m.role("wfp.deploy.events.log"), Some(Role::EventsLog));
        assert_eq!(m.role("wfp.deploy.jobs.other"), None);
        assert_eq!(m.role("something"), None);
    }
}
