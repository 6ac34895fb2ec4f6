//! JUnit XML for CI (GitHub Actions test reporters, GitLab, Jenkins).
//!
//! One `<testsuite>` per suite and one `<testcase>` per case. Failures carry
//! the one-line message as the `message` attribute and the full detail as
//! text; the step log goes in the case's `<system-out>`. All text is cleaned
//! of ANSI escapes and control characters, which XML 1.0 forbids even when
//! escaped and which break strict CI parsers.

use junit_report::{OffsetDateTime, Report, TestCase, TestCaseBuilder, TestSuite};

use super::text::{
    assertion_line, cdata, identity_line, one_line, precedence_line, probe_line, sanitize,
    step_line,
};
use heatcheck_engine::model::{CaseReport, CaseStatus, RestoreSummary, RunReport, SuiteReport};

/// The run as a JUnit XML document.
pub fn to_junit_xml(report: &RunReport) -> String {
    let timestamp = OffsetDateTime::from_unix_timestamp_nanos(
        report
            .started_at
            .timestamp_nanos_opt()
            .map_or(0, i128::from),
    )
    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut xml = Report::new();
    for suite in &report.suites {
        xml.add_testsuite(suite_xml(suite, &report.restore, timestamp));
    }
    let mut out = Vec::new();
    // Writing to a Vec fails only on I/O errors, which a Vec never returns.
    xml.write_xml(&mut out)
        .expect("JUnit XML written to memory");
    let xml = String::from_utf8(out).expect("JUnit XML is UTF-8");
    with_attempts(&xml, report)
}

/// Adds retried cases' earlier attempts the way Maven Surefire and nextest
/// write them (GitLab, Jenkins and action-junit-report read these): a flaky
/// case passes with one `<flakyFailure>`/`<flakyError>` per failed attempt;
/// a case that failed every attempt has its `<failure>` plus one
/// `<rerunFailure>`/`<rerunError>` per earlier attempt. junit-report has no
/// such elements, so its document is re-streamed through quick-xml.
fn with_attempts(xml: &str, report: &RunReport) -> String {
    use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

    if !report
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .any(|c| !c.failed_attempts.is_empty())
    {
        return xml.to_string();
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Vec::new());
    let (mut suite, mut case) = (None::<usize>, 0usize);
    let mut current: Option<&CaseReport> = None;
    let write_attempts = |w: &mut quick_xml::Writer<Vec<u8>>, c: &CaseReport| {
        for a in &c.failed_attempts {
            let errored = matches!(a.status, CaseStatus::Errored { .. });
            let tag = match (c.is_flaky(), errored) {
                (true, false) => "flakyFailure",
                (true, true) => "flakyError",
                (false, false) => "rerunFailure",
                (false, true) => "rerunError",
            };
            let (message, detail) = match &a.status {
                CaseStatus::Failed { message, detail }
                | CaseStatus::Errored { message, detail } => (message.as_str(), detail.as_str()),
                _ => ("", ""),
            };
            let kind = if errored { "Error" } else { "AssertionFailed" };
            let mut start = BytesStart::new(tag);
            start.push_attribute(("message", one_line(message).as_str()));
            start.push_attribute(("type", kind));
            start.push_attribute(("time", format!("{:.3}", a.duration.as_secs_f64()).as_str()));
            let _ = w.write_event(Event::Start(start));
            for (child, text) in [
                ("stackTrace", sanitize(detail)),
                ("system-out", sanitize(&system_out(a))),
            ] {
                if text.is_empty() {
                    continue;
                }
                let _ = w.write_event(Event::Start(BytesStart::new(child)));
                let _ = w.write_event(Event::Text(BytesText::new(&text)));
                let _ = w.write_event(Event::End(BytesEnd::new(child)));
            }
            let _ = w.write_event(Event::End(BytesEnd::new(tag)));
        }
    };
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(e) => e,
        };
        match &event {
            Event::Start(e) if e.name().as_ref() == b"testsuite" => {
                suite = Some(suite.map_or(0, |s| s + 1));
                case = 0;
            }
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                // The synthetic "(suite)" error case comes after the real ones.
                let found = suite.and_then(|s| report.suites.get(s)?.cases.get(case));
                case += 1;
                if matches!(event, Event::Empty(_)) {
                    if let Some(c) = found.filter(|c| !c.failed_attempts.is_empty()) {
                        let _ = writer.write_event(Event::Start(e.clone()));
                        write_attempts(&mut writer, c);
                        let _ = writer.write_event(Event::End(BytesEnd::new("testcase")));
                        continue;
                    }
                } else {
                    current = found;
                }
            }
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                if let Some(c) = current.take() {
                    write_attempts(&mut writer, c);
                }
            }
            _ => {}
        }
        let _ = writer.write_event(event);
    }
    String::from_utf8(writer.into_inner()).expect("JUnit XML is UTF-8")
}

fn suite_xml(
    suite: &SuiteReport,
    restore: &RestoreSummary,
    timestamp: OffsetDateTime,
) -> TestSuite {
    let name = one_line(&suite.name);
    let mut ts = TestSuite::new(&name);
    ts.set_timestamp(timestamp);
    ts.add_testcases(suite.cases.iter().map(|c| case_xml(suite, c, restore)));
    if let Some(error) = suite.unreported_error() {
        // A suite error no case shows would leave the suite green in CI.
        // Its time is what the cases do not account for, so the suite adds up.
        let cases: std::time::Duration = suite.cases.iter().map(|c| c.duration).sum();
        let mut tc = TestCaseBuilder::error(
            &format!("{name} (suite)"),
            dur(suite.duration.saturating_sub(cases)),
            "SuiteError",
            &one_line(error),
        );
        tc.set_classname(&name)
            .set_filepath(&one_line(&suite.file))
            .set_trace(&cdata(error));
        ts.add_testcase(tc.build());
    }
    if let Some(error) = &suite.error {
        ts.set_system_err(&cdata(error));
    }
    ts
}

fn case_xml(suite: &SuiteReport, case: &CaseReport, restore: &RestoreSummary) -> TestCase {
    let name = one_line(&case.display_name());
    let time = dur(case.duration);
    let mut tc = match &case.status {
        CaseStatus::Passed => TestCaseBuilder::success(&name, time),
        CaseStatus::Failed { message, detail } => {
            let kind = if case.assertions.iter().any(|a| !a.passed) {
                "AssertionFailed"
            } else {
                "StepFailed"
            };
            let mut b = TestCaseBuilder::failure(&name, time, kind, &one_line(message));
            b.set_trace(&cdata(detail));
            b
        }
        CaseStatus::Errored { message, detail } => {
            let mut b = TestCaseBuilder::error(&name, time, "Error", &one_line(message));
            b.set_trace(&cdata(detail));
            b
        }
        CaseStatus::Skipped { reason } => {
            let mut b = TestCaseBuilder::skipped_with_cause(&name, "Skipped", &one_line(reason));
            b.testcase.time = time;
            b
        }
    };
    tc.set_classname(&one_line(&suite.name))
        .set_filepath(&one_line(&suite.file));
    let mut log = system_out(case);
    // What this case's restore could not give back, marked for CI readers.
    let mine = |s: &str, c: &str| s == suite.name && c == case.name;
    for c in restore
        .identity_changed
        .iter()
        .filter(|c| mine(&c.suite, &c.case))
    {
        log.push_str(&format!("\nWARNING new identity: {}", identity_line(c)));
    }
    for c in restore
        .precedence_changed
        .iter()
        .filter(|c| mine(&c.suite, &c.case))
    {
        log.push_str(&format!(
            "\nWARNING route precedence changed: {}",
            precedence_line(c)
        ));
    }
    let log = log.trim_start().to_string();
    if !log.is_empty() {
        tc.set_system_out(&cdata(&log));
    }
    tc.build()
}

/// The case's step log, assertions, metrics and advice, one item per line.
fn system_out(case: &CaseReport) -> String {
    let mut lines = Vec::new();
    if let Some(d) = &case.description {
        lines.push(one_line(d));
    }
    if let Some(o) = &case.origin {
        lines.push(format!("origin: {}", one_line(o)));
    }
    lines.extend(case.steps.iter().map(step_line));
    lines.extend(case.assertions.iter().map(assertion_line));
    lines.extend(case.probes.iter().map(probe_line));
    if !case.metrics.is_empty() {
        lines.push("metrics:".into());
        lines.extend(case.metrics.iter().map(|m| format!("  {}", one_line(m))));
    }
    if !case.remediation.is_empty() {
        lines.push("remediation:".into());
        lines.extend(
            case.remediation
                .iter()
                .map(|r| format!("  - {}", one_line(r))),
        );
    }
    lines.join("\n")
}

fn dur(d: std::time::Duration) -> junit_report::Duration {
    junit_report::Duration::try_from(d).unwrap_or(junit_report::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_engine::fixture::sample_run;
    use quick_xml::events::Event as X;
    use quick_xml::Reader;

    /// A minimal element tree, enough to check what CI parsers will read.
    #[derive(Debug, Default)]
    struct Node {
        name: String,
        attrs: Vec<(String, String)>,
        text: String,
        children: Vec<Node>,
    }

    impl Node {
        fn attr(&self, key: &str) -> &str {
            self.attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("<{}> has no {key}", self.name))
        }
        fn all(&self, name: &str) -> Vec<&Node> {
            self.children.iter().filter(|c| c.name == name).collect()
        }
        fn one(&self, name: &str) -> &Node {
            let found = self.all(name);
            assert_eq!(found.len(), 1, "<{}> should have one <{name}>", self.name);
            found[0]
        }
    }

    fn element(e: &quick_xml::events::BytesStart<'_>) -> Node {
        Node {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect(),
            ..Node::default()
        }
    }

    fn parse(xml: &str) -> Node {
        let mut reader = Reader::from_str(xml);
        let mut stack = vec![Node::default()];
        loop {
            match reader.read_event().expect("well-formed XML") {
                X::Start(e) => stack.push(element(&e)),
                X::Empty(e) => stack.last_mut().unwrap().children.push(element(&e)),
                X::End(_) => {
                    let done = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(done);
                }
                X::CData(t) => stack.last_mut().unwrap().text += &t.decode().unwrap(),
                X::Text(t) => stack.last_mut().unwrap().text += &t.decode().unwrap(),
                X::Eof => break,
                _ => {}
            }
        }
        assert_eq!(stack.len(), 1, "unbalanced XML");
        stack.pop().unwrap()
    }

    /// The same XML indented, for a readable snapshot.
    fn indented(xml: &str) -> String {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
        loop {
            match reader.read_event().unwrap() {
                X::Eof => break,
                e => writer.write_event(e).unwrap(),
            }
        }
        String::from_utf8(writer.into_inner()).unwrap()
    }

    #[test]
    fn counts_and_attributes() {
        let doc = parse(&to_junit_xml(&sample_run()));
        let root = doc.one("testsuites");
        let suites = root.all("testsuite");
        assert_eq!(suites.len(), 2);

        let shop = suites[0];
        assert_eq!(shop.attr("name"), "shop-canary");
        assert_eq!(shop.attr("tests"), "4");
        assert_eq!(shop.attr("failures"), "1");
        assert_eq!(shop.attr("errors"), "0");
        assert_eq!(shop.attr("timestamp"), "2026-11-03T08:00:00Z");
        let cases = shop.all("testcase");
        let names: Vec<&str> = cases.iter().map(|c| c.attr("name")).collect();
        assert_eq!(
            names,
            [
                "fixtures",
                "steady state: shop served by v1",
                "v2 backend killed mid-rollout",
                "dns outage"
            ]
        );
        assert!(cases.iter().all(|c| c.attr("classname") == "shop-canary"));
        assert!(cases.iter().all(|c| c.attr("file") == "suites/shop.yaml"));
        assert_eq!(cases[1].attr("time"), "1.2");
        assert!(cases[0].all("failure").is_empty());

        let payments = suites[1];
        assert_eq!(payments.attr("tests"), "2");
        assert_eq!(payments.attr("errors"), "1");
        let suite_error = payments.all("testcase")[1];
        assert_eq!(suite_error.attr("name"), "payments (suite)");
        let error = suite_error.one("error");
        assert_eq!(error.attr("type"), "SuiteError");
        assert!(error
            .attr("message")
            .starts_with("scenario generation failed"));
        assert!(payments.one("system-err").text.contains("after 3 repairs"));
    }

    #[test]
    fn failure_has_one_line_message_and_full_clean_detail() {
        let doc = parse(&to_junit_xml(&sample_run()));
        let case = doc.one("testsuites").all("testsuite")[0].all("testcase")[2];
        let failure = case.one("failure");
        assert_eq!(failure.attr("type"), "AssertionFailed");
        assert_eq!(
            failure.attr("message"),
            "route falls back to v1: expected 200, got 503 (12 of 40 requests)"
        );
        assert_eq!(
            failure.text,
            "request GET http://shop/ -> 503\n\
             body: <html>\"Service Unavailable\" & 'retry'</html>\n\
             log: upstream connect error reset\n\
             raw: ]]> end"
        );
        let out = &case.one("system-out").text;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Kill v2 while 10% of traffic goes to it");
        assert_eq!(lines[1], "origin: lock");
        assert_eq!(
            lines[2],
            "[+0.000s] ok   apply manifests/route-canary.yaml (380ms)"
        );
        assert_eq!(
            lines[3],
            "[+0.400s] ign  delete Pod shop/backend-v2-0 (300ms): pods \"backend-v2-0\" not found"
        );
        assert!(out.contains(
            "[+0.900s] FAIL wait HTTPRoute shop/v2-canary Accepted (2.0s): timed out after 2s"
        ));
        assert!(out.contains("assert FAIL route falls back to v1 (40 attempts, 3.3s)"));
        assert!(out.contains("metrics:\n  error rate 30.0% (12/40)\n  p99 latency 1.8s"));
        assert!(out.contains("remediation:\n  - Add a retry policy"));
    }

    #[test]
    fn step_failure_type_and_errored_and_skipped_cases() {
        let mut report = sample_run();
        let shop = &mut report.suites[0];
        shop.cases[2].assertions.clear();
        shop.cases[1].status = CaseStatus::Errored {
            message: "probe crashed\nbadly".into(),
            detail: "stack".into(),
        };
        let doc = parse(&to_junit_xml(&report));
        let cases = doc.one("testsuites").all("testsuite")[0].all("testcase");
        assert_eq!(cases[2].one("failure").attr("type"), "StepFailed");
        let error = cases[1].one("error");
        assert_eq!(error.attr("message"), "probe crashed badly");
        assert_eq!(error.text, "stack");
        let skipped = cases[3].one("skipped");
        assert_eq!(
            skipped.attr("message"),
            "guard: kind NetworkPolicy is not allowed"
        );
    }

    #[test]
    fn hostile_text_everywhere_stays_well_formed() {
        let mut report = sample_run();
        let nasty = "a<b & \"c\" 'd' \x1b[1mbold\x1b[0m \x00\x08\x0b\x0c\u{fffe} ]]> end";
        report.suites[0].name = nasty.into();
        report.suites[0].file = nasty.into();
        let case = &mut report.suites[0].cases[2];
        case.name = nasty.into();
        case.steps[0].name = nasty.into();
        case.status = CaseStatus::Failed {
            message: nasty.into(),
            detail: nasty.into(),
        };
        let xml = to_junit_xml(&report);
        assert!(
            xml.chars()
                .all(|c| matches!(c, '\n' | '\t' | '\r') || !c.is_control()),
            "control characters left in XML"
        );
        assert!(!xml.contains('\u{fffe}'));
        let doc = parse(&xml);
        let suite = doc.one("testsuites").all("testsuite")[0];
        let clean = "a<b & \"c\" 'd' bold  ]]> end";
        assert_eq!(suite.attr("name"), clean);
        let case = suite.all("testcase")[2];
        assert_eq!(case.attr("name"), clean);
        assert_eq!(case.attr("classname"), clean);
        assert_eq!(case.one("failure").attr("message"), clean);
        assert_eq!(case.one("failure").text, clean);
        assert!(case.one("system-out").text.contains(clean));
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips_cleaned(
            name in crate::text::tests::any_text(),
            message in crate::text::tests::any_text(),
            detail in crate::text::tests::any_text(),
        ) {
            use crate::text::sanitize;
            let mut report = sample_run();
            let case = &mut report.suites[0].cases[2];
            case.name = name.clone();
            case.steps[0].name = name.clone();
            case.status = CaseStatus::Failed { message: message.clone(), detail: detail.clone() };
            let doc = parse(&to_junit_xml(&report));
            let case = doc.one("testsuites").all("testsuite")[0].all("testcase")[2];
            proptest::prop_assert_eq!(case.attr("name"), one_line(&name));
            let failure = case.one("failure");
            proptest::prop_assert_eq!(failure.attr("message"), one_line(&message));
            proptest::prop_assert_eq!(&failure.text, &sanitize(&detail));
        }
    }

    #[test]
    fn empty_run_is_valid() {
        let mut report = sample_run();
        report.suites.clear();
        let doc = parse(&to_junit_xml(&report));
        assert!(doc.one("testsuites").children.is_empty());
    }

    #[test]
    fn junit_snapshot() {
        insta::assert_snapshot!("run_report_junit", indented(&to_junit_xml(&sample_run())));
    }
}
