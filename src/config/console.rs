//! The `[console]` section: where the web console listens, who may use it,
//! and where it reads queue depths.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The web console (`wfp-deployer console`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Address the console listens on. Loopback by default: without a
    /// `token` the console refuses any other address.
    pub listen: String,
    /// Required unless `listen` is loopback: sent as `Authorization: Bearer
    /// <token>`, or as the password of HTTP basic auth (any user name).
    #[serde(serialize_with = "super::redact::optional_secret")]
    pub token: Option<SecretString>,
    /// The RabbitMQ management API, where queue depths come from.
    pub management_url: String,
    /// Management API credentials; unset, the AMQP URL's are used.
    pub management_user: Option<String>,
    /// The password going with `management_user`.
    #[serde(serialize_with = "super::redact::optional_secret")]
    pub management_password: Option<SecretString>,
    /// Events kept in memory for the page (in flight, outcomes, timelines).
    pub window: usize,
    /// How far back the console reads the events log on start-up.
    #[serde(with = "humantime_serde")]
    pub replay: Duration,
    /// How often queue depths are read from the management API.
    #[serde(with = "humantime_serde")]
    pub queue_poll: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9465".into(),
            token: None,
            management_url: "http://127.0.0.1:15672".into(),
            management_user: None,
            management_password: None,
            window: 10_000,
            replay: Duration::from_secs(3600),
            queue_poll: Duration::from_secs(5),
        }
    }
}

impl ConsoleSettings {
    /// The address to listen on.
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, String> {
        let listen = self.listen.trim();
        listen
            .parse()
            .map_err(|_| format!("console.listen {listen:?} is not an address like 127.0.0.1:9465"))
    }
}
