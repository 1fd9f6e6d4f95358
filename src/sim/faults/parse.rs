//! Reading fault rules: the `--fault ENDPOINT:KIND[:OPTION...]` syntax of
//! the command line and the JSON of `POST /__sim/faults`, both checked into
//! the same [`FaultSpec`] so a bad rule is named before it is in force.

use std::str::FromStr;

use serde::Deserialize;

use super::{Endpoint, FaultAction, FaultSpec, Trigger};
use crate::sim::config::parse_duration;

/// The JSON form of a rule, as `POST /__sim/faults` takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultJson {
    endpoint: String,
    kind: String,
    status: Option<u16>,
    retry_after: Option<u64>,
    #[serde(alias = "latency_ms")]
    ms: Option<u64>,
    seconds: Option<i64>,
    count: Option<u64>,
    rate: Option<f64>,
    seed: Option<u64>,
}

impl TryFrom<FaultJson> for FaultSpec {
    type Error = String;

    fn try_from(j: FaultJson) -> Result<FaultSpec, String> {
        let endpoint = parse_endpoint(&j.endpoint)?;
        let unexpected = |name: &str, present: bool| {
            if present {
                Err(format!("{name} does not apply to kind {:?}", j.kind))
            } else {
                Ok(())
            }
        };
        let action = match j.kind.as_str() {
            "status" => {
                let status = j.status.ok_or("kind status needs a status")?;
                unexpected("ms", j.ms.is_some())?;
                unexpected("seconds", j.seconds.is_some())?;
                status_action(status, j.retry_after)?
            }
            "429" => {
                unexpected("status", j.status.is_some_and(|s| s != 429))?;
                unexpected("ms", j.ms.is_some())?;
                unexpected("seconds", j.seconds.is_some())?;
                status_action(429, j.retry_after)?
            }
            "reset" | "latency" | "advance_clock" => {
                unexpected("status", j.status.is_some())?;
                unexpected("retry_after", j.retry_after.is_some())?;
                match j.kind.as_str() {
                    "reset" => {
                        unexpected("ms", j.ms.is_some())?;
                        unexpected("seconds", j.seconds.is_some())?;
                        FaultAction::Reset
                    }
                    "latency" => {
                        unexpected("seconds", j.seconds.is_some())?;
                        FaultAction::Latency {
                            ms: j.ms.ok_or("kind latency needs ms")?,
                        }
                    }
                    _ => {
                        unexpected("ms", j.ms.is_some())?;
                        FaultAction::AdvanceClock {
                            seconds: j.seconds.ok_or("kind advance_clock needs seconds")?,
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "unknown kind {other:?} (status, 429, reset, latency, advance_clock)"
                ));
            }
        };
        let trigger = trigger(j.count, j.rate, j.seed)?;
        Ok(FaultSpec {
            endpoint,
            action,
            trigger,
        })
    }
}

/// `ENDPOINT:KIND[:OPTION...]`, see `--help` of `cloudflare-sim`.
impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(rule: &str) -> Result<FaultSpec, String> {
        let mut parts = rule.split(':');
        let endpoint = parse_endpoint(parts.next().unwrap_or_default())?;
        let kind = parts.next().ok_or("missing KIND after ENDPOINT:")?;
        let (mut count, mut rate, mut seed, mut retry_after) = (None, None, None, None);
        for option in parts {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| format!("option {option:?} is not key=value"))?;
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{key}: {v:?} is not a whole number"))
            };
            match key {
                "count" => count = Some(number(value)?),
                "seed" => seed = Some(number(value)?),
                "retry-after" | "retry_after" => retry_after = Some(number(value)?),
                "rate" => {
                    rate = Some(
                        value
                            .parse::<f64>()
                            .map_err(|_| format!("rate: {value:?} is not a number"))?,
                    );
                }
                other => {
                    return Err(format!(
                        "unknown option {other:?} (count, rate, seed, retry-after)"
                    ));
                }
            }
        }
        let action = match kind.split_once('=') {
            Some(("latency", value)) => FaultAction::Latency {
                ms: u64::try_from(parse_duration(value)?.as_millis())
                    .map_err(|_| "latency too long")?,
            },
            Some(("advance-clock" | "advance_clock", value)) => FaultAction::AdvanceClock {
                seconds: i64::try_from(parse_duration(value)?.as_secs())
                    .map_err(|_| "advance too long")?,
            },
            Some((other, _)) => return Err(format!("unknown kind {other:?}")),
            None if kind == "reset" => FaultAction::Reset,
            None => {
                let status = kind.parse::<u16>().map_err(|_| {
                    format!("unknown kind {kind:?} (a status, reset, latency=, advance-clock=)")
                })?;
                status_action(status, retry_after.take())?
            }
        };
        if retry_after.is_some() {
            return Err("retry-after only applies to a status kind".to_owned());
        }
        Ok(FaultSpec {
            endpoint,
            action,
            trigger: trigger(count, rate, seed)?,
        })
    }
}

fn parse_endpoint(name: &str) -> Result<Option<Endpoint>, String> {
    match name {
        "session" => Ok(Some(Endpoint::Session)),
        "upload" => Ok(Some(Endpoint::Upload)),
        "script" => Ok(Some(Endpoint::Script)),
        "all" => Ok(None),
        other => Err(format!(
            "unknown endpoint {other:?} (session, upload, script, all)"
        )),
    }
}

fn status_action(status: u16, retry_after: Option<u64>) -> Result<FaultAction, String> {
    match status {
        429 => Ok(FaultAction::RateLimit {
            retry_after: retry_after.unwrap_or(1),
        }),
        400..=599 => Ok(FaultAction::Status {
            status,
            retry_after,
        }),
        other => Err(format!("status {other} is not a 4xx or 5xx")),
    }
}

fn trigger(count: Option<u64>, rate: Option<f64>, seed: Option<u64>) -> Result<Trigger, String> {
    match (count, rate) {
        (Some(_), Some(_)) => Err("give count or rate, not both".to_owned()),
        (Some(0), None) => Err("count must be at least 1".to_owned()),
        (Some(n), None) if seed.is_none() => Ok(Trigger::Count(n)),
        (None, Some(rate)) if (0.0..=1.0).contains(&rate) => Ok(Trigger::Rate { rate, seed }),
        (None, Some(rate)) => Err(format!("rate {rate} is not within 0..1")),
        (None, None) if seed.is_none() => Ok(Trigger::Always),
        _ => Err("seed only applies with rate".to_owned()),
    }
}
