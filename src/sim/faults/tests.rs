//! Unit tests of fault rule parsing and decisions.

use super::*;

fn spec(rule: &str) -> FaultSpec {
    match rule.parse::<FaultSpec>() {
        Ok(spec) => spec,
        Err(e) => panic!("{rule}: {e}"),
    }
}

#[test]
fn cli_rules_parse_as_documented() {
    assert_eq!(
        spec("upload:503:count=2"),
        FaultSpec {
            endpoint: Some(Endpoint::Upload),
            action: FaultAction::Status {
                status: 503,
                retry_after: None
            },
            trigger: Trigger::Count(2),
        }
    );
    assert_eq!(
        spec("session:429:retry-after=1:rate=0.2"),
        FaultSpec {
            endpoint: Some(Endpoint::Session),
            action: FaultAction::RateLimit { retry_after: 1 },
            trigger: Trigger::Rate {
                rate: 0.2,
                seed: None
            },
        }
    );
    assert_eq!(spec("script:reset:count=1").action, FaultAction::Reset);
    let latency = spec("all:latency=200ms");
    assert_eq!(latency.endpoint, None);
    assert_eq!(latency.action, FaultAction::Latency { ms: 200 });
    assert_eq!(latency.trigger, Trigger::Always);
    assert_eq!(
        spec("upload:advance-clock=1h:count=1").action,
        FaultAction::AdvanceClock { seconds: 3600 }
    );
    assert_eq!(
        spec("upload:503:retry-after=7").action,
        FaultAction::Status {
            status: 503,
            retry_after: Some(7)
        }
    );
}

#[test]
fn bad_cli_rules_are_refused() {
    for rule in [
        "",
        "uploads:503",
        "upload",
        "upload:200",
        "upload:teapot",
        "upload:503:count=0",
        "upload:503:count=1:rate=0.5",
        "upload:503:rate=2",
        "upload:reset:retry-after=1",
        "upload:503:color=red",
        "upload:latency=soon",
        "upload:503:seed=3",
    ] {
        assert!(rule.parse::<FaultSpec>().is_err(), "{rule:?} accepted");
    }
}

#[test]
fn json_rules_parse_and_check_their_fields() {
    let parse = |v: Value| {
        serde_json::from_value::<FaultJson>(v)
            .map_err(|e| e.to_string())
            .and_then(FaultSpec::try_from)
    };
    let ok = parse(json!({"endpoint": "upload", "kind": "status", "status": 503, "count": 2}));
    assert_eq!(
        ok.map(|s| s.action),
        Ok(FaultAction::Status {
            status: 503,
            retry_after: None
        })
    );
    let ok = parse(json!({"endpoint": "session", "kind": "429", "retry_after": 3, "count": 1}));
    assert_eq!(
        ok.map(|s| s.action),
        Ok(FaultAction::RateLimit { retry_after: 3 })
    );
    let ok =
        parse(json!({"endpoint": "upload", "kind": "advance_clock", "seconds": 3600, "count": 1}));
    assert_eq!(
        ok.map(|s| s.action),
        Ok(FaultAction::AdvanceClock { seconds: 3600 })
    );
    assert!(parse(json!({"endpoint": "upload", "kind": "status"})).is_err());
    assert!(parse(json!({"endpoint": "upload", "kind": "latency", "seconds": 1})).is_err());
    assert!(parse(json!({"endpoint": "upload", "kind": "reset", "colour": 1})).is_err());
    assert!(parse(json!({"endpoint": "upload", "kind": "status", "status": 302})).is_err());
}

#[test]
fn counted_rules_are_used_up() {
    let mut faults = Faults::new(vec![spec("upload:503:count=2")]);
    assert!(faults.decide(Endpoint::Session).terminal.is_none());
    assert!(faults.decide(Endpoint::Upload).terminal.is_some());
    assert!(faults.decide(Endpoint::Upload).terminal.is_some());
    assert!(faults.decide(Endpoint::Upload).terminal.is_none());
    assert_eq!(faults.to_json()[0]["remaining"], json!(0));
    assert_eq!(faults.to_json()[0]["fired"], json!(2));
}

#[test]
fn first_terminal_rule_wins_and_clock_waits_for_a_normal_answer() {
    let mut faults = Faults::new(vec![
        spec("all:latency=5ms"),
        spec("script:reset:count=1"),
        spec("script:500:count=1"),
        spec("script:advance-clock=10s:count=1"),
    ]);
    let first = faults.decide(Endpoint::Script);
    assert_eq!(first.latency_ms, 5);
    assert_eq!(first.terminal, Some(FaultAction::Reset));
    assert_eq!(first.advance_clock, None);
    assert_eq!(first.kind(), Some("reset"));
    let second = faults.decide(Endpoint::Script);
    assert_eq!(
        second.terminal,
        Some(FaultAction::Status {
            status: 500,
            retry_after: None
        })
    );
    let third = faults.decide(Endpoint::Script);
    assert_eq!(third.terminal, None);
    assert_eq!(third.advance_clock, Some(10));
    assert_eq!(third.kind(), Some("advance_clock"));
    assert_eq!(faults.decide(Endpoint::Script).kind(), Some("latency"));
    assert_eq!(faults.decide(Endpoint::Other), Decision::default());
}

#[test]
fn seeded_rates_repeat_and_hit_about_the_rate() {
    let run = || {
        let mut faults = Faults::new(vec![spec("upload:500:rate=0.3:seed=42")]);
        (0..1000)
            .map(|_| faults.decide(Endpoint::Upload).terminal.is_some())
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    let hits = first.iter().filter(|hit| **hit).count();
    assert!(
        (220..380).contains(&hits),
        "{hits} hits of 1000 at rate 0.3"
    );
}
