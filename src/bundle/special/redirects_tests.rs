//! Unit tests of the `_redirects` checks, one per rule, with Cloudflare's
//! documented example as the file that must pass.

use super::*;

fn parse(text: &str) -> Result<Redirects, String> {
    Redirects::parse(text.as_bytes(), None).map_err(|e| e.to_string())
}

fn error(text: &str) -> String {
    parse(text).err().unwrap_or_default()
}

/// The complete example from Cloudflare's "Redirects" page.
const DOCS_EXAMPLE: &str = "/home301 / 301\n/home302 / 302\n/querystrings /?query=string 301\n/twitch https://twitch.tv\n/trailing /trailing/ 301\n/notrailing/ /nottrailing 301\n/page/ /page2/#fragment 301\n/blog/* https://blog.my.domain/:splat # Blog migration\n/products/:code/:name /products?code=:code&name=:name\n";

#[test]
fn the_documented_example_parses_and_is_kept_byte_exact() {
    let redirects = Redirects::parse(DOCS_EXAMPLE.as_bytes(), None);
    let redirects = redirects.as_ref().ok();
    assert_eq!(redirects.map(Redirects::text), Some(DOCS_EXAMPLE));
    let rules = redirects.map(Redirects::rules).unwrap_or_default();
    assert_eq!(rules.len(), 9);
    let summary: Vec<_> = rules
        .iter()
        .map(|r| (r.from.as_str(), r.status, r.dynamic))
        .collect();
    assert_eq!(summary.get(3), Some(&("/twitch", 302, false)));
    assert_eq!(summary.get(7), Some(&("/blog/*", 302, true)));
    assert_eq!(summary.get(8), Some(&("/products/:code/:name", 302, true)));
}

#[test]
fn rewrites_comments_and_crlf_are_understood() {
    let text =
        "# rewrites\r\n/a /b 200\r\n/old /new 301 # moved\r\n  /page /page2#section 308  \r\n";
    let rules = parse(text).map(|r| r.rules().to_vec()).unwrap_or_default();
    let got: Vec<_> = rules
        .iter()
        .map(|r| (r.line, r.from.as_str(), r.to.as_str(), r.status))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "/a", "/b", 200),
            (3, "/old", "/new", 301),
            (4, "/page", "/page2#section", 308)
        ]
    );
}

#[test]
fn each_fault_names_its_line() {
    let cases = [
        (
            "/a\n",
            "_redirects:1: expected `source destination [status]`, found 1 fields",
        ),
        (
            "/a /b 301 extra\n",
            "_redirects:1: expected `source destination [status]`, found 4 fields",
        ),
        ("/a /b 404\n", "_redirects:1: status \"404\" is not one of"),
        ("/a /b 0x12D\n", "_redirects:1: status \"0x12D\""),
        ("/a /b +301\n", "_redirects:1: status \"+301\""),
        ("a /b\n", "_redirects:1: source \"a\" must be a path"),
        (
            "https://a.com/x /b\n",
            "_redirects:1: source \"https://a.com/x\" is a URL",
        ),
        ("/a b\n", "_redirects:1: destination \"b\" must be a path"),
        (
            "/a http://b.com/\n",
            "_redirects:1: destination \"http://b.com/\"",
        ),
        (
            "/a https://\n",
            "_redirects:1: destination \"https://\" has no host",
        ),
        (
            "/a https://b.com/ 200\n",
            "_redirects:1: a 200 rewrite must point to a path",
        ),
        (
            "/a/*/b/* /c\n",
            "_redirects:1: \"/a/*/b/*\" has more than one splat",
        ),
        (
            "/:x/:x /c\n",
            "_redirects:1: \"/:x/:x\" uses placeholder :x twice",
        ),
        (
            "/* /index.html 200\n",
            "_redirects:1: infinite loop: /* -> /index.html",
        ),
        ("/x/* /x/index 301\n", "_redirects:1: infinite loop"),
        (
            "/ /index.html 200\n",
            "_redirects:1: infinite loop: / -> /index.html",
        ),
        (
            "/a /b\n\n/a /c\n",
            "_redirects:3: a second rule for /a: line 1",
        ),
        (
            "/a?x=1 /b\n/a /c\n",
            "_redirects:2: a second rule for /a: line 1",
        ),
        ("/a /b\u{1}\n", "_redirects:1: control character"),
    ];
    for (text, want) in cases {
        let got = error(text);
        assert!(
            got.starts_with(want),
            "{got:?} does not start with {want:?}"
        );
    }
}

#[test]
fn the_root_to_index_loops_only_with_html_handling() {
    let text = b"/ /index.html 200\n";
    assert!(Redirects::parse(text, Some("auto-trailing-slash")).is_err());
    assert!(Redirects::parse(text, Some("none")).is_ok());
    // An absolute destination never loops through this site's HTML handling.
    assert!(parse("/* https://example.com/index.html 301\n").is_ok());
}

fn statics(count: usize) -> String {
    (0..count).map(|i| format!("/s{i} /t{i}\n")).collect()
}

fn dynamics(count: usize) -> String {
    (0..count)
        .map(|i| format!("/d{i}/* /t{i}/:splat\n"))
        .collect()
}

#[test]
fn at_most_2000_static_and_100_dynamic_rules() {
    let full = format!(
        "{}{}",
        statics(MAX_STATIC_RULES),
        dynamics(MAX_DYNAMIC_RULES)
    );
    let redirects = parse(&full);
    let counts = redirects.map(|r| {
        let dynamic = r.rules().iter().filter(|r| r.dynamic).count();
        (r.rules().len() - dynamic, dynamic)
    });
    assert_eq!(counts, Ok((MAX_STATIC_RULES, MAX_DYNAMIC_RULES)));

    assert_eq!(
        error(&statics(MAX_STATIC_RULES + 1)),
        "_redirects:2001: static rule 2001 is over the limit of 2000"
    );
    assert!(
        error(&dynamics(MAX_DYNAMIC_RULES + 1))
            .starts_with("_redirects:101: dynamic rule 101 is over the limit of 100")
    );
}

#[test]
fn static_rules_after_a_dynamic_one_count_as_dynamic() {
    let text = format!("{}{}", dynamics(1), statics(MAX_DYNAMIC_RULES));
    assert!(error(&text).starts_with("_redirects:101: dynamic rule 101"));
}

#[test]
fn at_most_1000_characters_a_rule() {
    // "/a " is three characters.
    let at_limit = format!("/a /{}\n", "b".repeat(MAX_RULE_CHARS - 4));
    assert!(parse(&at_limit).is_ok());
    let over = format!("/a /{}\n", "b".repeat(MAX_RULE_CHARS - 3));
    assert_eq!(
        error(&over),
        "_redirects:1: rule of 1001 characters, more than the limit of 1000"
    );
}

#[test]
fn an_empty_file_has_no_rules() {
    assert_eq!(parse("").map(|r| r.rules().len()), Ok(0));
    assert_eq!(parse("# nothing yet\n\n").map(|r| r.rules().len()), Ok(0));
}
