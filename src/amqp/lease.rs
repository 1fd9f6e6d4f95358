//! The worker's per-script lease, kept by the broker: an exclusive queue per
//! script ([`lease_queue_name`]).
//!
//! RabbitMQ lets only one connection declare an exclusive queue (another
//! gets `RESOURCE_LOCKED`, 405) and deletes it when that connection closes,
//! for whatever reason: so whoever declared the queue holds the lease, and a
//! crashed worker's lease ends with its connection, by itself, without a
//! time-to-live to tune. Leases live on a connection of their own
//! ([`LEASE_CONNECTION_NAME`], opened on first use and again after it
//! died), apart from the consuming one, so a reconnect of the consumer does
//! not end a deploy's lease and a lease lost does not requeue jobs.
//!
//! The same connection may declare its own exclusive queue again, so the
//! broker alone cannot keep two jobs of this process apart: a lease this
//! process holds (or is still releasing) counts as taken here too.
//!
//! [`BrokerLease`] implements the pipeline's [`ScriptLease`]; the pipeline
//! knows no AMQP.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use sha2::{Digest, Sha256};

use super::connection::{connect_named, reply_code};
use crate::config::AmqpSettings;
use crate::pipeline::{LeaseError, LeaseHold, ScriptLease};

/// The `connection_name` of the lease connection (the `instance` client
/// property names the worker, as on its other connection).
pub const LEASE_CONNECTION_NAME: &str = "wfp-deployer-lease";

/// Every lease queue's name starts so.
pub const LEASE_QUEUE_PREFIX: &str = "wfp.deploy.lease.";

/// The broker's answer to declaring an exclusive queue another connection
/// has.
const RESOURCE_LOCKED: u16 = 405;

/// The lease queue of `script` (`account/namespace/script`): a digest, so
/// any script name fits the broker's 255-byte limit and no name needs
/// escaping.
pub fn lease_queue_name(script: &str) -> String {
    let digest = Sha256::digest(script.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{LEASE_QUEUE_PREFIX}{hex}")
}

type Held = Arc<Mutex<HashSet<String>>>;

/// Script leases held through the broker.
pub struct BrokerLease {
    settings: AmqpSettings,
    instance: String,
    /// The lease connection, once opened.
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    /// Lease queues this process holds or is releasing.
    held: Held,
}

impl BrokerLease {
    /// Connects only when the first lease is asked for.
    pub fn new(settings: &AmqpSettings, instance: &str) -> Self {
        Self {
            settings: settings.clone(),
            instance: instance.to_string(),
            connection: tokio::sync::Mutex::new(None),
            held: Held::default(),
        }
    }

    /// The lease connection, opened again if it died.
    async fn connection(&self, script: &str) -> Result<Arc<Connection>, LeaseError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| c.status().connected()) {
            return Ok(connection.clone());
        }
        let connection = connect_named(&self.settings, LEASE_CONNECTION_NAME, &self.instance)
            .await
            .map_err(|e| unavailable(script, e))?;
        let connection = Arc::new(connection);
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Declares the lease queue on `connection`: `Some(channel)` when it is
    /// ours now.
    async fn declare(
        &self,
        connection: &Connection,
        script: &str,
        name: &str,
    ) -> Result<Option<Channel>, LeaseError> {
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| unavailable(script, e))?;
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let declared = channel.queue_declare(name.into(), exclusive, FieldTable::default());
        match tokio::time::timeout(self.settings.confirm_timeout, declared).await {
            Ok(Ok(_)) => Ok(Some(channel)),
            // Another connection holds it (the broker closed the channel).
            Ok(Err(e)) if reply_code(&e) == Some(RESOURCE_LOCKED) => Ok(None),
            Ok(Err(e)) => Err(unavailable(script, e)),
            Err(_) => Err(unavailable(
                script,
                format!(
                    "no answer from the broker within {:?}",
                    self.settings.confirm_timeout
                ),
            )),
        }
    }
}

fn unavailable(script: &str, detail: impl std::fmt::Display) -> LeaseError {
    LeaseError::Unavailable {
        script: script.to_string(),
        detail: detail.to_string(),
    }
}

#[async_trait::async_trait]
impl ScriptLease for BrokerLease {
    async fn try_acquire(&self, script: &str) -> Result<Option<Box<dyn LeaseHold>>, LeaseError> {
        let name = lease_queue_name(script);
        let Some(local) = Local::claim(&self.held, &name) else {
            return Ok(None);
        };
        // Dropping `local` on a failure or a refusal frees the name here.
        let connection = self.connection(script).await?;
        let Some(channel) = self.declare(&connection, script, &name).await? else {
            return Ok(None);
        };
        Ok(Some(Box::new(BrokerHold {
            script: script.to_string(),
            released: Some(Release {
                name,
                connection,
                channel,
                timeout: self.settings.confirm_timeout,
                local,
            }),
        })))
    }
}

/// This process's claim on a lease name: freed when dropped.
struct Local {
    name: String,
    held: Held,
}

impl Local {
    fn claim(held: &Held, name: &str) -> Option<Local> {
        let mut names = held.lock().unwrap_or_else(|e| e.into_inner());
        names.insert(name.to_string()).then(|| Local {
            name: name.to_string(),
            held: held.clone(),
        })
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let mut names = self.held.lock().unwrap_or_else(|e| e.into_inner());
        names.remove(&self.name);
    }
}

/// A lease held: its queue, declared on `connection`.
struct BrokerHold {
    script: String,
    /// What giving it up takes; `None` once given up.
    released: Option<Release>,
}

struct Release {
    name: String,
    connection: Arc<Connection>,
    channel: Channel,
    timeout: Duration,
    local: Local,
}

impl Release {
    /// A channel on the lease's own connection; `None` when that connection
    /// is gone (and the lease with it).
    async fn channel(&self) -> Option<Channel> {
        if !self.connection.status().connected() {
            return None;
        }
        if self.channel.status().connected() {
            return Some(self.channel.clone());
        }
        self.connection.create_channel().await.ok()
    }

    /// Deletes the lease queue, then frees the name in this process. Only
    /// ever on the connection that declared it (another connection would be
    /// refused anyway). If the broker cannot be told, the lease connection
    /// is closed, which ends every lease on it: better than a lease left
    /// held while this process lives.
    async fn run(self) {
        if let Some(channel) = self.channel().await {
            let delete =
                channel.queue_delete(self.name.as_str().into(), QueueDeleteOptions::default());
            match tokio::time::timeout(self.timeout, delete).await {
                Ok(Ok(_)) => {
                    let _ = channel.close(200, "lease released".into()).await;
                }
                _ => {
                    let _ = self
                        .connection
                        .close(200, "a lease could not be released".into())
                        .await;
                }
            }
        }
        drop(self.local);
    }
}

#[async_trait::async_trait]
impl LeaseHold for BrokerHold {
    /// A passive declare of the lease queue on the connection that holds
    /// it: it answers only while that connection lives and owns the queue.
    async fn check(&self) -> Result<(), LeaseError> {
        let lost = |detail: String| LeaseError::Lost {
            script: self.script.clone(),
            detail,
        };
        let Some(release) = &self.released else {
            return Err(lost("already released".into()));
        };
        let Some(channel) = release.channel().await else {
            return Err(lost("its broker connection closed".into()));
        };
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared =
            channel.queue_declare(release.name.as_str().into(), passive, FieldTable::default());
        match tokio::time::timeout(release.timeout, declared).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(lost(e.to_string())),
            Err(_) => Err(lost(format!(
                "no answer from the broker within {:?}",
                release.timeout
            ))),
        }
    }

    async fn release(mut self: Box<Self>) {
        if let Some(release) = self.released.take() {
            release.run().await;
        }
    }
}

impl Drop for BrokerHold {
    /// A deploy stopped while holding the lease (its timeout, shutdown):
    /// released in the background. Until that is done the name stays taken
    /// in this process, so no job of this process takes the lease early.
    fn drop(&mut self) {
        if let Some(release) = self.released.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(release.run());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_queue_names_are_short_stable_and_per_script() {
        let name = lease_queue_name("0123/customers/acme");
        assert_eq!(name, lease_queue_name("0123/customers/acme"));
        assert_ne!(name, lease_queue_name("0123/customers/acme2"));
        assert!(name.starts_with(LEASE_QUEUE_PREFIX));
        assert_eq!(name.len(), LEASE_QUEUE_PREFIX.len() + 32);
    }

    #[test]
    fn a_name_this_process_holds_is_taken_until_dropped() {
        let held = Held::default();
        let first = Local::claim(&held, "q").expect("free");
        assert!(Local::claim(&held, "q").is_none(), "taken here");
        assert!(Local::claim(&held, "r").is_some(), "another script is free");
        drop(first);
        assert!(Local::claim(&held, "q").is_some(), "free again");
    }
}
