//! Unit tests of the simulator's `_headers` and `_redirects` checks: the
//! documented examples pass, each broken line is reported with its number,
//! and a rule-limit overflow answers 100324.

use serde_json::json;

use super::*;

fn lines_of(problems: &[Problem]) -> Vec<usize> {
    problems.iter().map(|p| p.line).collect()
}

#[test]
fn documented_headers_pass_with_their_rule_count() {
    let text = "# comment\n/secure/page\n  X-Frame-Options: DENY\n  Referrer-Policy: no-referrer\n\n/static/*\n  Access-Control-Allow-Origin: *\n\nhttps://:project.pages.dev/*\n  X-Robots-Tag: noindex\n/*.jpg\n  ! Content-Security-Policy\n";
    let file = headers::parse(text);
    assert_eq!(file.as_ref().map(|f| f.rules), Ok(4));
    assert_eq!(file.map(|f| f.text), Ok(text.to_owned()));
}

#[test]
fn every_bad_header_line_is_reported() {
    let text = "X-Early: 1\n/a\n/b\n  Bad Name: 1\n  X-Empty:\n  nocolon\n/c:d/:d\n  X: 1\nhttp://x.com/\n  X: 1\nhttps://x.com:8080/\n  X: 1\n/ok\n  : v\n";
    let problems = headers::parse(text).err().unwrap_or_default();
    // A refused pattern leaves its header lines without a rule (8, 10, 12),
    // and a rule whose every header was bad (/b, /ok) sets none.
    assert_eq!(lines_of(&problems), (1..=14).collect::<Vec<_>>());
    let message = |line: usize| {
        problems
            .iter()
            .find(|p| p.line == line)
            .map(|p| p.message.clone())
            .unwrap_or_default()
    };
    assert_eq!(message(1), "Expected a path before headers");
    assert_eq!(message(2), "No headers specified");
    assert_eq!(message(4), "Header name cannot include spaces");
    assert_eq!(message(5), "No header value specified");
    assert!(message(6).starts_with("Expected a colon-separated header pair"));
    assert!(message(7).contains(":d is used more than once"));
    assert_eq!(message(8), "Expected a path before headers");
    assert!(message(9).starts_with("URLs should either be relative"));
    assert!(message(11).starts_with("Specifying ports is not supported"));
    assert_eq!(message(13), "No headers specified");
    assert_eq!(message(14), "No header name specified");
}

#[test]
fn header_limits_hold() {
    let rules = |n: usize| -> String { (0..n).map(|i| format!("/r{i}\n  X: {i}\n")).collect() };
    assert_eq!(headers::parse(&rules(100)).map(|f| f.rules), Ok(100));
    let problems = headers::parse(&rules(105)).err().unwrap_or_default();
    assert_eq!(lines_of(&problems), vec![201]);
    // The long line is refused, which leaves its rule with no header.
    let long = format!("/a\n  X: {}\n", "v".repeat(1996));
    assert_eq!(
        lines_of(&headers::parse(&long).err().unwrap_or_default()),
        vec![1, 2]
    );
    let fits = format!("/a\n  X: {}\r\n", "v".repeat(1995));
    assert!(headers::parse(&fits).is_ok());
}

#[test]
fn documented_redirects_pass_with_their_counts() {
    let text = "/home301 / 301\n/querystrings /?query=string 301\n/twitch https://twitch.tv\n/page/ /page2/#fragment 301\n/blog/* https://blog.my.domain/:splat # Blog migration\n/products/:code/:name /products?code=:code&name=:name\n/after-dynamic /x\n/a /b 200\n";
    let file = redirects::parse(text, None);
    assert_eq!(
        file.as_ref().map(|f| (f.static_rules, f.dynamic_rules)),
        Ok((4, 4))
    );
}

#[test]
fn every_bad_redirect_line_is_reported() {
    let text = "/a\n/b /c 404\nhttps://x.com/a /b\n/d nowhere\n/* /index.html 200\n/ /index 301\n/e /f\n/e /g\n/h https://x.com/ 200\n/i/*/j/* /k\n";
    let problems = redirects::parse(text, None).err().unwrap_or_default();
    assert_eq!(lines_of(&problems), vec![1, 2, 3, 4, 5, 6, 8, 9, 10]);
    assert!(problems[1].message.contains("Got 404."));
    assert!(problems[4].message.starts_with("Infinite loop detected"));
    assert!(problems[6].message.contains("Duplicate rule for path /e"));
    assert!(problems[7].message.starts_with("Proxy (200) redirects"));
    // Without HTML handling, `/ /index` is a plain rewrite.
    assert!(redirects::parse("/ /index 200\n", Some("none")).is_ok());
}

#[test]
fn redirect_limits_hold() {
    let statics = |n: usize| -> String { (0..n).map(|i| format!("/s{i} /t\n")).collect() };
    let dynamics = |n: usize| -> String { (0..n).map(|i| format!("/d{i}/* /t\n")).collect() };
    let full = format!("{}{}", statics(2000), dynamics(100));
    assert_eq!(
        redirects::parse(&full, None).map(|f| (f.static_rules, f.dynamic_rules)),
        Ok((2000, 100))
    );
    let problems = redirects::parse(&statics(2001), None)
        .err()
        .unwrap_or_default();
    assert_eq!(lines_of(&problems), vec![2001]);
    // The dynamic limit stops the parse, as Cloudflare's does.
    let problems = redirects::parse(&dynamics(150), None)
        .err()
        .unwrap_or_default();
    assert_eq!(lines_of(&problems), vec![101]);
    let long = format!("/a /{}\n", "b".repeat(997));
    assert_eq!(
        lines_of(&redirects::parse(&long, None).err().unwrap_or_default()),
        vec![1]
    );
}

#[test]
fn check_reads_the_config_and_answers_100324() {
    let metadata = |config: serde_json::Value| {
        json!({"assets": {"jwt": "j", "config": config}})
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    let none = check(&metadata(json!({"html_handling": "none"})));
    assert!(none.is_ok_and(|s| s.headers.is_none() && s.redirects.is_none()));

    let good = check(&metadata(
        json!({"_headers": "/a\n  X: 1\n", "_redirects": "/a /b\n"}),
    ));
    let shown = good.map(|s| s.to_json()).unwrap_or_default();
    assert_eq!(
        shown["_headers"],
        json!({"text": "/a\n  X: 1\n", "rules": 1})
    );
    assert_eq!(
        shown["_redirects"],
        json!({"text": "/a /b\n", "static_rules": 1, "dynamic_rules": 0})
    );

    let rules: String = (0..101).map(|i| format!("/d{i}/* /t\n")).collect();
    let err = check(&metadata(json!({"_redirects": rules}))).err();
    let err = err.map(|e| (e.status, e.code, e.message));
    assert_eq!(
        err,
        Some((
            StatusCode::BAD_REQUEST,
            CODE_INVALID_SPECIAL_FILE,
            "Invalid _redirects configuration:\nLine 101: Maximum number of dynamic rules supported is 100."
                .to_owned()
        ))
    );

    // The root-to-index rewrite is fine once the upload turns HTML handling off.
    let rewrite = json!({"_redirects": "/ /index.html 200\n", "html_handling": "none"});
    assert!(check(&metadata(rewrite)).is_ok());
}

#[test]
fn long_problem_lists_are_summed_up() {
    let text: String = (0..30).map(|_| "X: 1\n").collect();
    let message = refuse("_headers", &headers::parse(&text).err().unwrap_or_default()).message;
    assert_eq!(message.lines().count(), 1 + MAX_LISTED + 1);
    assert!(message.ends_with("... and 10 more"));
}
