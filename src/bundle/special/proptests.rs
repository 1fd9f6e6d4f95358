//! Property tests of the special files: `.assetsignore` against generated
//! trees (directory patterns, negations, git's no-re-include rule), and both
//! parsers against arbitrary bytes (never a panic), generated valid files
//! (every rule comes back) and files one rule over a limit (refused, naming
//! the line of the rule that crossed it).

use proptest::prelude::*;

use super::headers::{MAX_LINE_CHARS, MAX_RULES};
use super::redirects::{MAX_DYNAMIC_RULES, MAX_STATIC_RULES, STATUSES};
use super::{AssetsIgnore, Headers, Redirects};

/// A path segment; never `.` or `..`, never a glob character.
fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_-]{0,6}"
}

/// One to four segments below the directory under test.
fn below() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(segment(), 1..5)
}

fn matcher(text: &str) -> Result<AssetsIgnore, TestCaseError> {
    AssetsIgnore::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #[test]
    fn a_directory_pattern_ignores_exactly_the_paths_through_that_directory(
        dir in segment(),
        top in segment(),
        rest in below(),
    ) {
        let ig = matcher(&format!("{dir}/\n"))?;
        let tail = rest.join("/");
        let nested = format!("{top}/{dir}/{tail}");
        let at_root = format!("{dir}/{tail}");
        prop_assert!(ig.is_ignored(&nested, false), "{} kept", nested);
        prop_assert!(ig.is_ignored(&at_root, false), "{} kept", at_root);
        // Without a directory named `dir` on the way, nothing is ignored
        // (the last segment is the file; `dir/` matches directories only).
        let dirs = &rest[..rest.len() - 1];
        if top != dir && !dirs.contains(&dir) {
            let outside = format!("{top}/{tail}");
            prop_assert!(!ig.is_ignored(&outside, false), "{} ignored", outside);
        }
    }

    #[test]
    fn an_anchored_directory_pattern_ignores_only_at_the_root(
        dir in segment(),
        top in segment(),
        rest in below(),
    ) {
        prop_assume!(top != dir);
        let ig = matcher(&format!("/{dir}/\n"))?;
        let tail = rest.join("/");
        let at_root = format!("{dir}/{tail}");
        let nested = format!("{top}/{dir}/{tail}");
        prop_assert!(ig.is_ignored(&at_root, false), "{} kept", at_root);
        prop_assert!(!ig.is_ignored(&nested, false), "{} ignored", nested);
    }

    #[test]
    fn a_negation_re_includes_unless_a_parent_directory_is_ignored(
        dir in segment(),
        keep in segment(),
        other in segment(),
    ) {
        prop_assume!(keep != other);
        let kept = format!("{dir}/{keep}.txt");
        let dropped = format!("{dir}/{other}.txt");
        // `dir/*` ignores the entries, so `!dir/keep` can bring one back.
        let ig = matcher(&format!("{dir}/*\n!{kept}\n"))?;
        prop_assert!(!ig.is_ignored(&kept, false), "{} ignored", kept);
        prop_assert!(ig.is_ignored(&dropped, false), "{} kept", dropped);
        // `dir/` ignores the directory itself: git never looks inside it.
        let ig = matcher(&format!("{dir}/\n!{kept}\n"))?;
        prop_assert!(ig.is_ignored(&kept, false), "{} re-included", kept);
    }

    #[test]
    fn the_last_matching_pattern_wins(name in segment(), path in below()) {
        let file = format!("{}/{name}.log", path.join("/"));
        let negated_last = matcher("*.log\n!*.log\n")?.is_ignored(&file, false);
        let ignored_last = matcher("!*.log\n*.log\n")?.is_ignored(&file, false);
        let kept_by_name = matcher(&format!("*.log\n!{name}.log\n"))?.is_ignored(&file, false);
        prop_assert!(!negated_last, "{} ignored", file);
        prop_assert!(ignored_last, "{} kept", file);
        prop_assert!(!kept_by_name, "{} ignored", file);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Headers::parse(&bytes);
        let _ = Redirects::parse(&bytes, None);
        let _ = AssetsIgnore::parse(&bytes);
    }

    #[test]
    fn matching_never_panics_on_odd_paths(
        patterns in "[a-z*?!/\\[\\]\n.-]{0,40}",
        path in "[a-z/.*-]{0,30}",
        is_dir in any::<bool>(),
    ) {
        if let Ok(ig) = AssetsIgnore::parse(patterns.as_bytes()) {
            let _ = ig.is_ignored(&path, is_dir);
        }
    }

    #[test]
    fn parsers_never_panic_on_near_miss_syntax(text in "[/*:!# \t\r\na-cA-C0-9h.?-]{0,300}") {
        let _ = Headers::parse(text.as_bytes());
        let _ = Redirects::parse(text.as_bytes(), Some("none"));
        let _ = AssetsIgnore::parse(text.as_bytes());
    }

    #[test]
    fn every_valid_header_rule_comes_back(
        rules in prop::collection::vec(
            (
                prop::collection::vec(segment(), 0..4),
                any::<bool>(),
                prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[!-~]{1,30}"), 0..4),
                prop::collection::vec("[A-Za-z][A-Za-z0-9-]{0,15}", 0..3),
            ),
            0..=MAX_RULES,
        ),
        indent in "[ \t]{0,4}",
        crlf in any::<bool>(),
    ) {
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut text = String::from("# generated\n");
        let mut expected = Vec::new();
        for (segments, splat, set, unset) in &rules {
            let mut pattern = format!("/{}", segments.join("/"));
            if *splat {
                pattern.push('*');
            }
            text.push_str(&format!("{pattern}{newline}"));
            // A rule needs a header; give the bare ones one.
            let set = if set.is_empty() && unset.is_empty() {
                vec![("X-Default".to_owned(), "1".to_owned())]
            } else {
                set.clone()
            };
            for (name, value) in &set {
                text.push_str(&format!("{indent}{name}: {value}{newline}"));
            }
            for name in unset {
                text.push_str(&format!("{indent}! {name}{newline}"));
            }
            text.push_str(newline);
            expected.push((pattern, set.len(), unset.len()));
        }
        let parsed = Headers::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.text(), text.as_str());
        let got: Vec<_> = parsed
            .rules()
            .iter()
            .map(|r| (r.pattern.clone(), r.set.len(), r.unset.len()))
            .collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn every_valid_redirect_rule_comes_back(
        statics in prop::collection::vec((segment(), prop::sample::select(STATUSES.to_vec())), 0..50),
        dynamics in prop::collection::vec((segment(), any::<bool>(), prop::sample::select(STATUSES.to_vec())), 0..=MAX_DYNAMIC_RULES),
        comment in any::<bool>(),
    ) {
        let mut text = String::new();
        // Sources carry their index, so no two rules share one.
        for (i, (seg, status)) in statics.iter().enumerate() {
            text.push_str(&format!("/s{i}/{seg} /to/{seg} {status}\n"));
        }
        for (i, (seg, splat, status)) in dynamics.iter().enumerate() {
            let (from, to) = if *splat {
                (format!("/d{i}/{seg}/*"), "/to/:splat".to_owned())
            } else {
                (format!("/d{i}/:p{seg}"), format!("/to/:p{seg}"))
            };
            let note = if comment { " # generated" } else { "" };
            text.push_str(&format!("{from} {to} {status}{note}\n"));
        }
        let parsed = Redirects::parse(text.as_bytes(), None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.text(), text.as_str());
        let dynamic = parsed.rules().iter().filter(|r| r.dynamic).count();
        prop_assert_eq!(parsed.rules().len(), statics.len() + dynamics.len());
        prop_assert_eq!(dynamic, dynamics.len());
    }

    #[test]
    fn lines_over_the_limit_are_refused_wherever_they_are(
        before in 0usize..5,
        extra in 1usize..50,
    ) {
        let mut text: String = (0..before).map(|i| format!("/r{i}\n  X: 1\n")).collect();
        let value = "v".repeat(MAX_LINE_CHARS - 5 + extra);
        text.push_str(&format!("/long\n  X: {value}\n"));
        let err = Headers::parse(text.as_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
        let want = format!("_headers:{}: line of", 2 * before + 2);
        prop_assert!(err.starts_with(&want), "{} lacks {}", err, want);
    }
}

proptest! {
    // Each case builds files of thousands of lines: a few cases suffice.
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn rule_sets_over_a_limit_are_refused(extra in 1usize..20) {
        let headers: String = (0..MAX_RULES + extra).map(|i| format!("/r{i}\n  X: 1\n")).collect();
        let err = Headers::parse(headers.as_bytes()).err().map(|e| e.to_string());
        prop_assert_eq!(err, Some(format!("_headers:{}: rule 101 is over the limit of 100 rules", 2 * MAX_RULES + 1)));

        let statics: String = (0..MAX_STATIC_RULES + extra).map(|i| format!("/s{i} /t\n")).collect();
        let err = Redirects::parse(statics.as_bytes(), None).err().map(|e| e.to_string());
        prop_assert_eq!(err, Some(format!("_redirects:{}: static rule 2001 is over the limit of 2000", MAX_STATIC_RULES + 1)));

        let dynamics: String = (0..MAX_DYNAMIC_RULES + extra).map(|i| format!("/d{i}/* /t/:splat\n")).collect();
        let err = Redirects::parse(dynamics.as_bytes(), None).err().map(|e| e.to_string()).unwrap_or_default();
        let want = format!("_redirects:{}: dynamic rule 101", MAX_DYNAMIC_RULES + 1);
        prop_assert!(err.starts_with(&want), "{} lacks {}", err, want);
    }
}
