//! Fault injection: rules that make chosen API calls fail, stall, drop the
//! connection or advance the sim clock, so retry and expiry logic can be
//! tested deterministically.
//!
//! A rule targets `session`, `upload`, `script` or `all`, and fires on the
//! next `count` matching requests, with probability `rate` (seedable), or on
//! every request. Faults are decided before authentication and validation;
//! `advance_clock` alone acts after a normal answer.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

mod parse;

pub use parse::FaultJson;

/// Which API endpoint a request was routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Session,
    Upload,
    Script,
    Other,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Session => "session",
            Endpoint::Upload => "upload",
            Endpoint::Script => "script",
            Endpoint::Other => "other",
        }
    }
}

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this status and an enveloped error (429 is `RateLimit`).
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// 429 with a `Retry-After` header.
    RateLimit { retry_after: u64 },
    /// Drop the connection without an HTTP answer.
    Reset,
    /// Sleep before handling.
    Latency { ms: u64 },
    /// Advance the sim clock after a normal answer.
    AdvanceClock { seconds: i64 },
}

impl FaultAction {
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Status { .. } => "status",
            FaultAction::RateLimit { .. } => "429",
            FaultAction::Reset => "reset",
            FaultAction::Latency { .. } => "latency",
            FaultAction::AdvanceClock { .. } => "advance_clock",
        }
    }
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Always,
    Count(u64),
    Rate { rate: f64, seed: Option<u64> },
}

/// A checked fault rule, from `--fault` or `POST /__sim/faults`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// `None` targets every endpoint (`all`).
    pub endpoint: Option<Endpoint>,
    pub action: FaultAction,
    pub trigger: Trigger,
}

/// A rule in force, with its remaining count and its own random source.
struct ActiveRule {
    id: u64,
    spec: FaultSpec,
    rng: StdRng,
    fired: u64,
}

impl ActiveRule {
    fn fires(&mut self, endpoint: Endpoint) -> bool {
        if endpoint == Endpoint::Other || self.spec.endpoint.is_some_and(|e| e != endpoint) {
            return false;
        }
        let fires = match &mut self.spec.trigger {
            Trigger::Always => true,
            Trigger::Count(0) => false,
            Trigger::Count(n) => {
                *n -= 1;
                true
            }
            Trigger::Rate { rate, .. } => self.rng.random::<f64>() < *rate,
        };
        self.fired += u64::from(fires);
        fires
    }
}

/// What the faults decided for one request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decision {
    pub latency_ms: u64,
    /// A status, 429 or reset that replaces the normal answer.
    pub terminal: Option<FaultAction>,
    /// Seconds to advance the clock by after a normal answer.
    pub advance_clock: Option<i64>,
}

impl Decision {
    /// The kind shown in the request log: the answer-changing one first.
    pub fn kind(&self) -> Option<&'static str> {
        match (&self.terminal, self.advance_clock, self.latency_ms) {
            (Some(action), _, _) => Some(action.kind()),
            (None, Some(_), _) => Some("advance_clock"),
            (None, None, ms) if ms > 0 => Some("latency"),
            _ => None,
        }
    }
}

/// The rules in force.
pub struct Faults {
    rules: Vec<ActiveRule>,
    next_id: u64,
}

impl Faults {
    pub fn new(specs: Vec<FaultSpec>) -> Faults {
        let mut faults = Faults {
            rules: Vec::new(),
            next_id: 1,
        };
        for spec in specs {
            faults.add(spec);
        }
        faults
    }

    /// Adds a rule and returns its id.
    pub fn add(&mut self, spec: FaultSpec) -> u64 {
        let rng = match spec.trigger {
            Trigger::Rate {
                seed: Some(seed), ..
            } => StdRng::seed_from_u64(seed),
            _ => StdRng::from_os_rng(),
        };
        let id = self.next_id;
        self.next_id += 1;
        self.rules.push(ActiveRule {
            id,
            spec,
            rng,
            fired: 0,
        });
        id
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Decides the faults for one request. Latency rules always count; the
    /// first terminal rule that fires wins and later ones are not consumed;
    /// clock rules are consumed only when the request is answered normally.
    pub fn decide(&mut self, endpoint: Endpoint) -> Decision {
        let mut decision = Decision::default();
        for rule in &mut self.rules {
            match rule.spec.action.clone() {
                FaultAction::Latency { ms } => {
                    if rule.fires(endpoint) {
                        decision.latency_ms = decision.latency_ms.saturating_add(ms);
                    }
                }
                FaultAction::AdvanceClock { .. } => {}
                action => {
                    if decision.terminal.is_none() && rule.fires(endpoint) {
                        decision.terminal = Some(action);
                    }
                }
            }
        }
        if decision.terminal.is_none() {
            for rule in &mut self.rules {
                if let FaultAction::AdvanceClock { seconds } = rule.spec.action
                    && rule.fires(endpoint)
                {
                    let total = decision.advance_clock.unwrap_or(0).saturating_add(seconds);
                    decision.advance_clock = Some(total);
                }
            }
        }
        decision
    }

    /// The rules as `GET /__sim/faults` shows them.
    pub fn to_json(&self) -> Value {
        let rules: Vec<Value> = self.rules.iter().map(rule_json).collect();
        Value::Array(rules)
    }
}

fn rule_json(rule: &ActiveRule) -> Value {
    let spec = &rule.spec;
    let mut out = json!({
        "id": rule.id,
        "endpoint": spec.endpoint.map_or("all", Endpoint::name),
        "kind": spec.action.kind(),
        "fired": rule.fired,
    });
    match &spec.action {
        FaultAction::Status {
            status,
            retry_after,
        } => {
            out["status"] = json!(status);
            out["retry_after"] = json!(retry_after);
        }
        FaultAction::RateLimit { retry_after } => {
            out["status"] = json!(429);
            out["retry_after"] = json!(retry_after);
        }
        FaultAction::Reset => {}
        FaultAction::Latency { ms } => out["ms"] = json!(ms),
        FaultAction::AdvanceClock { seconds } => out["seconds"] = json!(seconds),
    }
    match &spec.trigger {
        Trigger::Always => out["remaining"] = Value::Null,
        Trigger::Count(n) => out["remaining"] = json!(n),
        Trigger::Rate { rate, seed } => {
            out["rate"] = json!(rate);
            out["seed"] = json!(seed);
            out["remaining"] = Value::Null;
        }
    }
    out
}

#[cfg(test)]
mod tests;
