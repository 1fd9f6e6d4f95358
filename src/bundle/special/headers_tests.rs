//! Unit tests of the `_headers` checks, one per rule, with Cloudflare's own
//! documentation examples as the files that must pass.

use super::*;

fn parse(text: &str) -> Result<Headers, String> {
    Headers::parse(text.as_bytes()).map_err(|e| e.to_string())
}

fn error(text: &str) -> String {
    parse(text).err().unwrap_or_default()
}

/// The example from Cloudflare's "Headers" page, tab-indented.
const DOCS_EXAMPLE: &str = "# This is a comment\n/secure/page\n\tX-Frame-Options: DENY\n\tX-Content-Type-Options: nosniff\n\tReferrer-Policy: no-referrer\n\n/static/*\n\tAccess-Control-Allow-Origin: *\n\tX-Robots-Tag: nosnippet\n\nhttps://myworker.mysubdomain.workers.dev/*\n\tX-Robots-Tag: noindex\n";

#[test]
fn the_documented_example_parses_and_is_kept_byte_exact() {
    let headers = Headers::parse(DOCS_EXAMPLE.as_bytes());
    let headers = headers.as_ref().ok();
    assert_eq!(headers.map(Headers::text), Some(DOCS_EXAMPLE));
    let rules = headers.map(Headers::rules).unwrap_or_default();
    let patterns: Vec<_> = rules.iter().map(|r| (r.line, r.pattern.as_str())).collect();
    assert_eq!(
        patterns,
        vec![
            (2, "/secure/page"),
            (7, "/static/*"),
            (11, "https://myworker.mysubdomain.workers.dev/*"),
        ]
    );
    assert_eq!(
        rules.first().map(|r| r.set.first().cloned()),
        Some(Some(("x-frame-options".to_owned(), "DENY".to_owned())))
    );
}

#[test]
fn detaching_placeholders_and_crlf_are_understood() {
    let text = "/*\r\n  Content-Security-Policy: default-src 'self';\r\n\r\n/*.jpg\r\n  ! Content-Security-Policy\r\n/movies/:title\r\n  x-movie-name: You are watching \":title\"\r\n";
    let headers = parse(text);
    let rules = headers.as_ref().map(Headers::rules).unwrap_or_default();
    assert_eq!(rules.len(), 3, "{headers:?}");
    assert_eq!(
        rules.get(1).map(|r| r.unset.clone()),
        Some(vec!["content-security-policy".to_owned()])
    );
    assert_eq!(
        rules
            .get(2)
            .and_then(|r| r.set.first())
            .map(|(_, v)| v.as_str()),
        Some("You are watching \":title\"")
    );
}

#[test]
fn a_value_may_hold_colons_and_urls() {
    let headers = parse("/a\n  Link: <https://example.com/x>; rel=\"canonical\"\n");
    let value = headers
        .ok()
        .and_then(|h| h.rules().first().and_then(|r| r.set.first().cloned()));
    assert_eq!(
        value.map(|(_, v)| v),
        Some("<https://example.com/x>; rel=\"canonical\"".to_owned())
    );
}

#[test]
fn each_fault_names_its_line() {
    let cases = [
        ("X-Frame-Options: DENY\n", "_headers:1: "),
        (
            "# c\n\n/a\n",
            "_headers:3: rule \"/a\" attaches or detaches no header",
        ),
        ("/a\n/b\n  X: 1\n", "_headers:1: rule \"/a\""),
        ("/a\n  X: 1\n  Y\n", "_headers:3: \"Y\" is neither"),
        ("/a\n  !Y\n", "_headers:2: \"!Y\" is neither"),
        ("/a\n  : v\n", "_headers:2: a header line has no name"),
        ("/a\n  X:\n", "_headers:2: header x has no value"),
        (
            "/a\n  X Y: 1\n",
            "_headers:2: header name \"X Y\" contains white space",
        ),
        (
            "/a\n  X(Y): 1\n",
            "_headers:2: header name \"X(Y)\" is not a valid",
        ),
        ("/a\n  ! X Y\n", "_headers:2: header name \"X Y\""),
        ("/a\n  X: a\u{7}b\n", "_headers:2: control character"),
        (
            "/a/*/b/*\n  X: 1\n",
            "_headers:1: \"/a/*/b/*\" has more than one splat",
        ),
        (
            "/:a/:a\n  X: 1\n",
            "_headers:1: \"/:a/:a\" uses placeholder :a twice",
        ),
        (
            "http://a.com/*\n  X: 1\n",
            "_headers:1: \"http://a.com/*\" is not a URL pattern",
        ),
        (
            "https://a.com:8443/\n  X: 1\n",
            "_headers:1: \"https://a.com:8443/\" names a port",
        ),
        (
            "/a\n  X: 1\n  X-Url:https://a.b\n",
            "_headers:3: \"X-Url:https://a.b\" is not a URL pattern",
        ),
        ("/a\n  X: 1\n\u{ff}", "_headers:3: not valid UTF-8"),
    ];
    for (text, want) in cases {
        let text = text.replace('\u{ff}', "");
        let got = if want.ends_with("UTF-8") {
            let mut bytes = text.into_bytes();
            bytes.push(0xff);
            Headers::parse(&bytes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        } else {
            error(&text)
        };
        assert!(
            got.starts_with(want),
            "{got:?} does not start with {want:?}"
        );
    }
}

fn rules(count: usize) -> String {
    (0..count).map(|i| format!("/r{i}\n  X-N: {i}\n")).collect()
}

#[test]
fn at_most_100_rules() {
    assert_eq!(
        parse(&rules(MAX_RULES)).map(|h| h.rules().len()),
        Ok(MAX_RULES)
    );
    // The 101st rule's pattern is on line 201.
    assert_eq!(
        error(&rules(MAX_RULES + 1)),
        "_headers:201: rule 101 is over the limit of 100 rules"
    );
}

#[test]
fn at_most_2000_characters_a_line_indentation_included() {
    let value = |len: usize| "v".repeat(len);
    // "  X: " is five characters.
    let at_limit = format!("/a\n  X: {}\n", value(MAX_LINE_CHARS - 5));
    assert!(parse(&at_limit).is_ok());
    let over = format!("/a\n  X: {}\n", value(MAX_LINE_CHARS - 4));
    assert_eq!(
        error(&over),
        "_headers:2: line of 2001 characters, more than the limit of 2000"
    );
    // Characters are UTF-16 units: 999 emoji are 1,998 units plus "/a".
    let wide = format!("/a{}\n  X: 1\n", "😀".repeat(1000));
    assert!(error(&wide).starts_with("_headers:1: line of 2002 characters"));
    // Comments are skipped before the limit applies, as Cloudflare does.
    let comment = format!("# {}\n/a\n  X: 1\n", value(5000));
    assert!(parse(&comment).is_ok());
}

#[test]
fn an_empty_file_has_no_rules() {
    assert_eq!(parse("").map(|h| h.rules().len()), Ok(0));
    assert_eq!(
        parse("\u{feff}# only a comment\n").map(|h| h.rules().len()),
        Ok(0)
    );
}
