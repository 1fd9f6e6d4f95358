//! Connecting to the broker, and this layer's error type.
//!
//! The URL is a secret (it carries the password), so nothing here ever prints
//! it: errors name the [`endpoint`] (`amqp://host:port/vhost`) instead, and a
//! URL that does not parse is reported without echoing it.
//!
//! [`AmqpError::is_fatal`] is the one place that decides which broker
//! failures a reconnect cannot cure (a queue declared with other arguments,
//! refused credentials), so the worker stops with a clear message instead of
//! retrying forever.

use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties, ErrorKind};
use secrecy::ExposeSecret;

use crate::config::AmqpSettings;

/// The `connection_name` client property, shown by the management UI and
/// `rabbitmqctl list_connections client_properties`.
pub const CONNECTION_NAME: &str = "wfp-deployer";

/// The client property naming the worker instance (see [`connect_as`]).
pub const INSTANCE_PROPERTY: &str = "instance";

/// How long one connection attempt may take (TCP, TLS and the AMQP
/// handshake) before it counts as failed and the back-off takes over.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// AMQP reply codes this layer reacts to.
const ACCESS_REFUSED: u16 = 403;
pub(super) const NOT_FOUND: u16 = 404;
const PRECONDITION_FAILED: u16 = 406;
const NOT_ALLOWED: u16 = 530;

/// Why the broker could not be used. Messages name the subject first (the
/// endpoint, exchange or queue), then the broker's own words.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("amqp url: {0}")]
    InvalidUrl(String),
    #[error("{endpoint}: cannot connect: {error}")]
    Connect {
        endpoint: String,
        error: lapin::Error,
    },
    #[error("{endpoint}: no connection within {after:?}")]
    ConnectTimeout { endpoint: String, after: Duration },
    #[error("cannot open the {purpose} channel: {error}")]
    Channel {
        purpose: &'static str,
        error: lapin::Error,
    },
    #[error("exchange {name}: {}", explain(.error))]
    Exchange { name: String, error: lapin::Error },
    #[error("queue {name}: {}", explain(.error))]
    Queue { name: String, error: lapin::Error },
    #[error("binding queue {queue} to exchange {exchange} with {routing_key:?}: {}", explain(.error))]
    Bind {
        queue: String,
        exchange: String,
        routing_key: String,
        error: lapin::Error,
    },
    #[error("queue {queue}: cannot consume: {}", explain(.error))]
    Consume { queue: String, error: lapin::Error },
}

impl AmqpError {
    /// The broker error behind this one, if any.
    fn lapin(&self) -> Option<&lapin::Error> {
        match self {
            AmqpError::InvalidUrl(_) | AmqpError::ConnectTimeout { .. } => None,
            AmqpError::Connect { error, .. }
            | AmqpError::Channel { error, .. }
            | AmqpError::Exchange { error, .. }
            | AmqpError::Queue { error, .. }
            | AmqpError::Bind { error, .. }
            | AmqpError::Consume { error, .. } => Some(error),
        }
    }

    /// Whether retrying cannot help: the operator has to act (fix the URL,
    /// the credentials or the vhost, or delete a queue that was declared
    /// with other arguments than the contract's).
    pub fn is_fatal(&self) -> bool {
        if matches!(self, AmqpError::InvalidUrl(_)) {
            return true;
        }
        matches!(
            self.lapin().and_then(reply_code),
            Some(ACCESS_REFUSED | PRECONDITION_FAILED | NOT_ALLOWED)
        )
    }
}

/// The AMQP reply code of a broker-side error (`406` for
/// `PRECONDITION_FAILED`, ...); `None` for I/O and client-side errors.
pub fn reply_code(error: &lapin::Error) -> Option<u16> {
    match error.kind() {
        ErrorKind::ProtocolError(e) => Some(e.get_id()),
        _ => None,
    }
}

/// The broker's words, plus what an operator should do when they are not
/// enough on their own.
fn explain(error: &lapin::Error) -> String {
    match reply_code(error) {
        Some(PRECONDITION_FAILED) => format!(
            "exists with other arguments or type than contract v1 declares \
             (delete it or align the settings): {error}"
        ),
        Some(ACCESS_REFUSED) => format!("access refused (check the user's permissions): {error}"),
        Some(NOT_FOUND) => format!("does not exist: {error}"),
        _ => error.to_string(),
    }
}

/// The broker's address without credentials, for logs and errors:
/// `amqp://host:port/vhost`.
pub fn endpoint(uri: &AMQPUri) -> String {
    let vhost = if uri.vhost == "/" {
        "%2f"
    } else {
        uri.vhost.as_str()
    };
    format!(
        "{}://{}:{}/{}",
        uri.scheme, uri.authority.host, uri.authority.port, vhost
    )
}

/// Parses the secret URL; the error (for [`AmqpError::InvalidUrl`]) never
/// echoes the URL or its password.
fn parse_url(settings: &AmqpSettings) -> Result<AMQPUri, String> {
    let raw = settings.url.expose_secret();
    raw.parse::<AMQPUri>().map_err(|message| {
        if message.contains(raw) || message.contains('@') {
            "not a valid amqp:// or amqps:// URL".to_string()
        } else {
            message
        }
    })
}

/// Opens a connection named [`CONNECTION_NAME`]. One attempt, bounded in
/// time; the caller decides whether and when to try again.
pub async fn connect(settings: &AmqpSettings) -> Result<Connection, AmqpError> {
    connect_as(settings, "").await
}

/// [`connect`], also telling the broker which worker instance this is (the
/// `instance` client property), so an operator (or a test) can tell the
/// connections of several workers apart.
pub async fn connect_as(settings: &AmqpSettings, instance: &str) -> Result<Connection, AmqpError> {
    connect_named(settings, CONNECTION_NAME, instance).await
}

/// [`connect_as`] under another `connection_name`: the worker's lease
/// connection is told apart from its consuming one this way.
pub async fn connect_named(
    settings: &AmqpSettings,
    name: &str,
    instance: &str,
) -> Result<Connection, AmqpError> {
    let uri = parse_url(settings).map_err(AmqpError::InvalidUrl)?;
    let endpoint = endpoint(&uri);
    let mut properties = ConnectionProperties::default().with_connection_name(name.into());
    if !instance.is_empty() {
        properties = properties.with_client_property(INSTANCE_PROPERTY.into(), instance.into());
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect_uri(uri, properties)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(AmqpError::Connect { endpoint, error }),
        Err(_) => Err(AmqpError::ConnectTimeout {
            endpoint,
            after: CONNECT_TIMEOUT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn settings(url: &str) -> AmqpSettings {
        AmqpSettings {
            url: SecretString::from(url),
            ..AmqpSettings::default()
        }
    }

    #[test]
    fn endpoint_hides_the_credentials() {
        let uri = parse_url(&settings("amqp://user:pw-secret@broker:5673/jobs")).unwrap();
        assert_eq!(endpoint(&uri), "amqp://broker:5673/jobs");
        let uri = parse_url(&settings("amqp://u:p@h/%2f")).unwrap();
        assert_eq!(endpoint(&uri), "amqp://h:5672/%2f");
    }

    #[test]
    fn a_bad_url_is_reported_without_the_password() {
        let err = parse_url(&settings("amqp://user:pw-secret@")).unwrap_err();
        assert!(!err.contains("pw-secret"), "{err}");
        let err = parse_url(&settings("http://user:pw-secret@host/")).unwrap_err();
        assert!(!err.contains("pw-secret"), "{err}");
        assert!(AmqpError::InvalidUrl(err).is_fatal());
    }

    #[tokio::test]
    async fn a_refused_connection_is_worth_retrying_and_names_the_endpoint() {
        // Port 1 on loopback: nothing listens there.
        let err = connect(&settings("amqp://guest:pw-secret@127.0.0.1:1/%2f"))
            .await
            .unwrap_err();
        assert!(!err.is_fatal(), "{err}");
        let shown = err.to_string();
        assert!(
            shown.starts_with("amqp://127.0.0.1:1/%2f: cannot connect"),
            "{shown}"
        );
        assert!(!shown.contains("pw-secret"), "{shown}");
    }
}
