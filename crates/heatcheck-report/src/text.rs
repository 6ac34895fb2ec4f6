//! Text helpers shared by the reporters: cleaning untrusted text (ANSI
//! escapes, control characters) and the one-line formats of steps,
//! assertions and durations.

use heatcheck_engine::model::{AssertionRecord, Outcome, StepRecord};
pub(crate) use heatcheck_engine::probe::stats::probe_line;
pub(crate) use heatcheck_gateway::units::fmt_duration;

/// Removes ANSI escape sequences (CSI, OSC/DCS strings, two-char escapes).
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                // String sequences run until BEL or ESC \ (string terminator).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                // nF escapes: intermediates then one final char, e.g. ESC ( B.
                Some(' '..='/') => {
                    while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            c => out.push(c),
        }
    }
    out
}

fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if matches!(c, '@'..='~') {
            break;
        }
    }
}

/// Untrusted text made safe for XML 1.0 and terminals: no ANSI escapes, no
/// control characters except tab and newlines, no non-characters.
pub(crate) fn sanitize(s: &str) -> String {
    strip_ansi(s)
        .chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || !(c.is_control() || c == '\u{fffe}' || c == '\u{ffff}')
        })
        .collect()
}

/// `sanitize`, with line breaks (and the blanks around them) folded to one
/// space and tabs made spaces: for XML attributes, whose parsers turn tabs
/// and line breaks into spaces anyway, and one-line terminal messages.
pub(crate) fn one_line(s: &str) -> String {
    let clean = sanitize(s).replace('\t', " ");
    let mut out = String::with_capacity(clean.len());
    for line in clean
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

/// Text for a CDATA section: sanitized, and `]]>` split across two CDATA
/// sections (the writer does not do it) so the content survives intact.
pub(crate) fn cdata(s: &str) -> String {
    sanitize(s).replace("]]>", "]]]]><![CDATA[>")
}

/// Four-column label of a step outcome.
pub(crate) fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Failed => "FAIL",
        Outcome::Ignored => "ign",
        Outcome::Skipped => "skip",
    }
}

/// `[+0.120s] ok   apply manifests/route.yaml (45ms)`, then `: message`.
pub(crate) fn step_line(step: &StepRecord) -> String {
    let mut line = format!(
        "[+{}.{:03}s] {:<4} {} ({})",
        step.started_ms / 1000,
        step.started_ms % 1000,
        outcome_label(step.outcome),
        one_line(&step.name),
        fmt_duration(step.duration)
    );
    if let Some(m) = step
        .message
        .as_deref()
        .map(one_line)
        .filter(|m| !m.is_empty())
    {
        line.push_str(": ");
        line.push_str(&m);
    }
    line
}

/// `assert ok   route serves v1 (3 attempts, 1.2s): expected 200, got 200`
pub(crate) fn assertion_line(a: &AssertionRecord) -> String {
    let attempts = if a.attempts == 1 {
        "1 attempt".to_string()
    } else {
        format!("{} attempts", a.attempts)
    };
    let mut line = format!(
        "assert {:<4} {} ({attempts}, {})",
        if a.passed { "ok" } else { "FAIL" },
        one_line(&a.name),
        fmt_duration(a.duration)
    );
    let msg = one_line(&a.message);
    if !msg.is_empty() {
        line.push_str(": ");
        line.push_str(&msg);
    }
    line
}

/// One object restore gave back under a new identity.
pub(crate) fn identity_line(c: &heatcheck_engine::model::IdentityChange) -> String {
    one_line(&format!(
        "{} was recreated ({}): uid {} -> {}, creationTimestamp {} -> {}",
        c.object, c.case, c.uid_before, c.uid_after, c.created_before, c.created_after
    ))
}

/// One route conflict another route wins after restore.
pub(crate) fn precedence_line(c: &heatcheck_engine::model::RoutePrecedenceChange) -> String {
    one_line(&format!(
        "{} ({}): {} won before the scenario, {} wins after restore",
        c.change.matched, c.case, c.change.before, c.change.after
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn strips_colour_cursor_osc_and_charset_escapes() {
        assert_eq!(strip_ansi("\x1b[31mred\x1b[0m plain"), "red plain");
        assert_eq!(strip_ansi("a\x1b[2K\x1b[1Ab"), "ab");
        assert_eq!(strip_ansi("\x1b]0;title\x07text"), "text");
        assert_eq!(
            strip_ansi("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
            "link"
        );
        assert_eq!(strip_ansi("\x1b(Bx\u{9b}1my"), "xy");
        assert_eq!(strip_ansi("trailing \x1b"), "trailing ");
    }

    #[test]
    fn sanitize_drops_controls_but_keeps_layout_and_unicode() {
        assert_eq!(
            sanitize("a\u{0}b\u{7}c\td\ne\r\n\u{85}f\u{ffff}✓ <&>"),
            "abc\td\ne\r\nf✓ <&>"
        );
    }

    #[test]
    fn one_line_folds_line_breaks() {
        assert_eq!(
            one_line("  first\n\n  second \r\nthird\n"),
            "first second third"
        );
        assert_eq!(one_line("\x1b[1mbold\x1b[0m"), "bold");
        assert_eq!(one_line("a\tb\rc"), "a b c");
    }

    proptest::proptest! {
        #[test]
        fn sanitized_text_has_no_escapes_or_controls(s in any_text()) {
            let clean = sanitize(&s);
            proptest::prop_assert!(clean
                .chars()
                .all(|c| matches!(c, '\t' | '\n' | '\r') || !c.is_control()));
            let line = one_line(&s);
            proptest::prop_assert!(!line.contains(['\n', '\r', '\t']));
            proptest::prop_assert!(!line.starts_with(' ') && !line.ends_with(' '));
        }
    }

    /// Arbitrary text, heavy on the characters that cause trouble.
    pub(crate) fn any_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<String>(),
            "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\[\\]<>&;'\"\\\\ a-z0-9\\u{fffe}\\u{ffff}]{0,40}",
        ]
    }

    #[test]
    fn cdata_splits_terminator() {
        assert_eq!(cdata("a]]>b"), "a]]]]><![CDATA[>b");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(fmt_duration(Duration::from_millis(45)), "45ms");
        assert_eq!(fmt_duration(Duration::from_millis(3210)), "3.2s");
        assert_eq!(fmt_duration(Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn step_and_assertion_lines() {
        let step = StepRecord {
            index: 0,
            name: "apply manifests/route.yaml".into(),
            started_ms: 120,
            duration: Duration::from_millis(45),
            outcome: Outcome::Ok,
            message: None,
        };
        assert_eq!(
            step_line(&step),
            "[+0.120s] ok   apply manifests/route.yaml (45ms)"
        );
        let failed = StepRecord {
            started_ms: 61_005,
            outcome: Outcome::Failed,
            message: Some("timed out\nafter 60s".into()),
            ..step
        };
        assert_eq!(
            step_line(&failed),
            "[+61.005s] FAIL apply manifests/route.yaml (45ms): timed out after 60s"
        );
        let a = AssertionRecord {
            name: "route serves v1".into(),
            passed: false,
            message: "expected 200, got 503".into(),
            detail: None,
            attempts: 3,
            duration: Duration::from_millis(1200),
            at_ms: None,
        };
        assert_eq!(
            assertion_line(&a),
            "assert FAIL route serves v1 (3 attempts, 1.2s): expected 200, got 503"
        );
    }
}
