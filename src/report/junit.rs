//! JUnit XML for CI (GitHub Actions test reporters, GitLab, Jenkins).
//!
//! One `<testsuite>` per suite and one `<testcase>` per case. Failures carry
//! the one-line message as the `message` attribute and the full detail as
//! text; the step log goes in the case's `<system-out>`. All text is cleaned
//! of ANSI escapes and control characters, which XML 1.0 forbids even when
//! escaped and which break strict CI parsers.

use junit_report::{OffsetDateTime, Report, TestCase, TestCaseBuilder, TestSuite};

use super::model::{CaseReport, CaseStatus, RunReport, SuiteReport};
use super::text::{assertion_line, cdata, one_line, step_line};

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
        xml.add_testsuite(suite_xml(suite, timestamp));
    }
    let mut out = Vec::new();
    // Writing to a Vec fails only on I/O errors, which a Vec never returns.
    xml.write_xml(&mut out)
        .expect("JUnit XML written to memory");
    String::from_utf8(out).expect("JUnit XML is UTF-8")
}

fn suite_xml(suite: &SuiteReport, timestamp: OffsetDateTime) -> TestSuite {
    let name = one_line(&suite.name);
    let mut ts = TestSuite::new(&name);
    ts.set_timestamp(timestamp);
    ts.add_testcases(suite.cases.iter().map(|c| case_xml(suite, c)));
    if let Some(error) = suite.unreported_error() {
        // A suite error no case shows would leave the suite green in CI.
        let mut tc = TestCaseBuilder::error(&format!("{name} (suite)"), dur(suite.duration), "SuiteError", &one_line(error));
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

fn case_xml(suite: &SuiteReport, case: &CaseReport) -> TestCase {
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
    let log = system_out(case);
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
    if !case.metrics.is_empty() {
        lines.push("metrics:".into());
        lines.extend(case.metrics.iter().map(|m| format!("  {}", one_line(m))));
    }
    if !case.remediation.is_empty() {
        lines.push("remediation:".into());
        lines.extend(case.remediation.iter().map(|r| format!("  - {}", one_line(r))));
    }
    lines.join("\n")
}

fn dur(d: std::time::Duration) -> junit_report::Duration {
    junit_report::Duration::try_from(d).unwrap_or(junit_report::Duration::MAX)
}
