//! Settings values serde cannot read (or write) as they are: lists from a
//! comma-separated variable, durations with a floor, counts with a range.
//! Each names its key in the error, so a bad value is named at load time.

use std::time::Duration;

use serde::Deserialize;

use crate::contract::quote::quoted;

/// `worker.retry_delays`: a list of durations, or one comma-separated string
/// (how an environment variable gives it); at least one, none zero (a zero
/// delay would spin a failing job through its attempts at once).
pub(super) fn retry_delays<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Vec<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let items = match Raw::deserialize(de)? {
        Raw::List(items) => items,
        Raw::Text(text) => text.split(',').map(|s| s.trim().to_string()).collect(),
    };
    let mut delays = Vec::with_capacity(items.len());
    for item in items.iter().filter(|i| !i.is_empty()) {
        let delay = humantime::parse_duration(item).map_err(|e| {
            serde::de::Error::custom(format!("worker.retry_delays: {}: {e}", quoted(item)))
        })?;
        if delay.is_zero() {
            return Err(serde::de::Error::custom(
                "worker.retry_delays: a delay must be more than zero",
            ));
        }
        delays.push(delay);
    }
    if delays.is_empty() {
        return Err(serde::de::Error::custom(
            "worker.retry_delays must list at least one delay",
        ));
    }
    Ok(delays)
}

/// `worker.max_attempts`: at least 1 (it counts the first attempt).
pub(super) fn max_attempts<'de, D: serde::Deserializer<'de>>(de: D) -> Result<u32, D::Error> {
    match u32::deserialize(de)? {
        0 => Err(serde::de::Error::custom(
            "worker.max_attempts must be at least 1 (it counts the first attempt)",
        )),
        n => Ok(n),
    }
}

/// `amqp.max_job_bytes`: at least 1 (a zero would refuse every job).
pub(super) fn max_job_bytes<'de, D: serde::Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    match u64::deserialize(de)? {
        0 => Err(serde::de::Error::custom(
            "amqp.max_job_bytes must be at least 1",
        )),
        n => Ok(n),
    }
}

/// `worker.job_timeout`: a duration of more than zero (zero would fail
/// every deploy at once).
pub(super) fn job_timeout<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let timeout: Duration = humantime_serde::deserialize(de)?;
    if timeout.is_zero() {
        return Err(serde::de::Error::custom(
            "worker.job_timeout must be more than zero",
        ));
    }
    Ok(timeout)
}

/// `events.log_max_age`: at least a second (the broker's unit).
pub(super) fn log_max_age<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let age: Duration = humantime_serde::deserialize(de)?;
    if age < Duration::from_secs(1) {
        return Err(serde::de::Error::custom(
            "events.log_max_age must be at least 1s",
        ));
    }
    Ok(age)
}

/// Writes durations as human-readable strings, as `retry_delays` reads them.
pub(super) fn durations<S: serde::Serializer>(
    delays: &[Duration],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(delays.len()))?;
    for delay in delays {
        seq.serialize_element(&humantime::format_duration(*delay).to_string())?;
    }
    seq.end()
}
