//! The budget's windows, blocks and headers on explicit instants, and its
//! flags.

use super::*;

fn budgets(limit: &str, penalty: u64) -> Budgets {
    Budgets::new(RateLimitConfig {
        limit: Some(parse_rate_limit(limit).unwrap()),
        penalty: Duration::from_secs(penalty),
    })
}

fn at(start: Instant, secs: f64) -> Instant {
    start + Duration::from_secs_f64(secs)
}

fn remaining(a: Admission) -> Option<u64> {
    match a {
        Admission::Allowed { remaining, .. } => Some(remaining),
        _ => None,
    }
}

#[test]
fn limits_parse_as_n_per_window() {
    let l = parse_rate_limit("1200/300s").unwrap();
    assert_eq!((l.quota, l.window), (1200, Duration::from_secs(300)));
    assert_eq!(parse_rate_limit("1200/5m").unwrap().window.as_secs(), 300);
    for bad in [
        "1200", "0/10s", "x/10s", "10/0s", "10/500ms", "10/soon", "-1/5s",
    ] {
        assert!(parse_rate_limit(bad).is_err(), "{bad}");
    }
}

#[test]
fn flags_default_to_off_and_name_bad_values() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        rate_limit: RateLimitConfig,
    }
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied()))
            .map(|c| c.rate_limit)
            .map_err(|e| e.to_string())
    };
    let defaults = parse(&[]).unwrap();
    assert_eq!(defaults.limit, None);
    assert_eq!(defaults.penalty, Duration::from_secs(300));
    let set = parse(&["--rate-limit", "60/10s", "--rate-limit-penalty", "2s"]).unwrap();
    assert_eq!(set.limit.map(|l| l.quota), Some(60));
    assert_eq!(set.penalty, Duration::from_secs(2));
    for (args, flag) in [
        (&["--rate-limit", "60"][..], "--rate-limit"),
        (&["--rate-limit-penalty", "0s"], "--rate-limit-penalty"),
    ] {
        let err = parse(args).unwrap_err();
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn off_by_default_counts_nothing() {
    let b = Budgets::new(RateLimitConfig::off());
    let now = Instant::now();
    for _ in 0..10_000 {
        assert_eq!(b.admit(Some(0), None, now), Admission::Unlimited);
    }
}

#[test]
fn a_window_counts_down_then_blocks_for_the_penalty() {
    let b = budgets("3/10s", 60);
    let t0 = Instant::now();
    let answers: Vec<_> = (0..3).map(|_| b.admit(Some(0), None, t0)).collect();
    assert_eq!(
        answers.iter().map(|a| remaining(*a)).collect::<Vec<_>>(),
        [Some(2), Some(1), Some(0)]
    );
    assert_eq!(
        answers[0],
        Admission::Allowed {
            limit: parse_rate_limit("3/10s").unwrap(),
            remaining: 2,
            reset: 10
        }
    );
    let refused = b.admit(Some(0), None, at(t0, 4.0));
    assert!(
        matches!(
            refused,
            Admission::Refused {
                retry_after: 60,
                ..
            }
        ),
        "{refused:?}"
    );
    // The block holds past the window's end, counting down, not extended.
    let later = b.admit(Some(0), None, at(t0, 30.5));
    assert!(
        matches!(
            later,
            Admission::Refused {
                retry_after: 34,
                ..
            }
        ),
        "{later:?}"
    );
    // It ends after the penalty, with a fresh window.
    assert_eq!(remaining(b.admit(Some(0), None, at(t0, 64.0))), Some(2));
    assert_eq!(b.stats()["over_budget"], 2);
}

#[test]
fn a_new_window_starts_after_the_last_one_ended() {
    let b = budgets("2/10s", 60);
    let t0 = Instant::now();
    b.admit(Some(0), None, t0);
    let second = b.admit(Some(0), None, at(t0, 9.5));
    assert!(
        matches!(
            second,
            Admission::Allowed {
                remaining: 0,
                reset: 1,
                ..
            }
        ),
        "{second:?}"
    );
    let next = b.admit(Some(0), None, at(t0, 10.0));
    assert!(
        matches!(
            next,
            Admission::Allowed {
                remaining: 1,
                reset: 10,
                ..
            }
        ),
        "{next:?}"
    );
}

#[test]
fn tokens_have_budgets_of_their_own_and_uploads_count_for_their_accounts_token() {
    let b = budgets("2/10s", 60);
    let now = Instant::now();
    assert_eq!(remaining(b.admit(Some(0), Some("acct-a"), now)), Some(1));
    assert_eq!(remaining(b.admit(Some(1), Some("acct-b"), now)), Some(1));
    // An upload (no API token) for acct-a uses token 0's last request.
    assert_eq!(remaining(b.admit(None, Some("acct-a"), now)), Some(0));
    assert!(matches!(
        b.admit(None, Some("acct-a"), now),
        Admission::Refused { .. }
    ));
    assert_eq!(remaining(b.admit(Some(1), None, now)), Some(0));
    assert_eq!(b.admit(None, Some("unknown"), now), Admission::Unlimited);
    assert_eq!(b.admit(None, None, now), Admission::Unlimited);
}

#[test]
fn answers_carry_the_draft_headers() {
    let limit = parse_rate_limit("1200/300s").unwrap();
    let mut ok = StatusCode::OK.into_response();
    Admission::Allowed {
        limit,
        remaining: 50,
        reset: 30,
    }
    .stamp(&mut ok);
    assert_eq!(ok.headers()["ratelimit"], "\"default\";r=50;t=30");
    assert_eq!(ok.headers()["ratelimit-policy"], "\"default\";q=1200;w=300");

    let refused = Admission::Refused {
        limit,
        retry_after: 17,
    };
    let mut response = refused.refusal().unwrap();
    refused.stamp(&mut response);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "17");
    assert_eq!(response.headers()["ratelimit"], "\"default\";r=0;t=17");
    assert_eq!(refused.fault(), Some("over_budget"));
    assert!(Admission::Unlimited.refusal().is_none());
}
