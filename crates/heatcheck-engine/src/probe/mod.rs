//! Checks: HTTP expectations, resource expectations, ordering, presence.
//! One attempt of a check gives `Ok` or a one-line failure plus detail;
//! `check_assertion` adds the `eventually` retry loop and the record.

pub mod continuous;
pub mod http;
pub(crate) mod promql;
pub(crate) mod resource;
pub mod stats;

use std::time::{Duration, Instant};

use crate::context::{StepError, SuiteContext};
use crate::model::AssertionRecord;
use heatcheck_format::{Assertion, AssertionKind};

/// A failed attempt: one line for humans, the whole story for reports.
#[derive(Debug, Clone)]
pub(crate) struct CheckFailure {
    pub(crate) message: String,
    pub(crate) detail: String,
}

impl CheckFailure {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        let message = message.into();
        CheckFailure {
            detail: message.clone(),
            message,
        }
    }

    pub(crate) fn with_detail(message: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckFailure {
            message: message.into(),
            detail: detail.into(),
        }
    }
}

impl From<StepError> for CheckFailure {
    fn from(e: StepError) -> Self {
        CheckFailure::new(e.to_string())
    }
}

impl From<heatcheck_cluster::ClusterError> for CheckFailure {
    fn from(e: heatcheck_cluster::ClusterError) -> Self {
        CheckFailure::new(e.to_string())
    }
}

/// Runs an assertion, retrying within its `eventually` window (HTTP) or the
/// suite's default for cluster checks that are given one. `name_prefix` marks
/// steady-state checks in reports.
pub(crate) async fn check_assertion(
    ctx: &SuiteContext,
    a: &Assertion,
    name_prefix: &str,
) -> Result<AssertionRecord, StepError> {
    let started = Instant::now();
    let (within, every) = match &a.kind {
        AssertionKind::Http(h) => h
            .eventually
            .as_ref()
            .map(|e| (e.within.0, e.every.0))
            .unwrap_or((Duration::ZERO, Duration::ZERO)),
        AssertionKind::Promql(q) => q
            .eventually
            .as_ref()
            .map(|e| (e.within.0, e.every.0))
            .unwrap_or((Duration::ZERO, Duration::ZERO)),
        _ => (Duration::ZERO, Duration::ZERO),
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = match &a.kind {
            AssertionKind::Http(h) => http::check(ctx, h).await,
            AssertionKind::Resource(r) => resource::check_resource(ctx, r).await,
            AssertionKind::Order(o) => resource::check_order(ctx, o).await,
            AssertionKind::Absent(o) => resource::check_presence(ctx, o, false).await,
            AssertionKind::Present(o) => resource::check_presence(ctx, o, true).await,
            AssertionKind::Promql(q) => promql::check(ctx, q).await,
        };
        let record = |passed: bool, message: String, detail: Option<String>| AssertionRecord {
            at_ms: None,
            name: format!("{name_prefix}{}", a.display_name()),
            passed,
            message,
            detail,
            attempts,
            duration: started.elapsed(),
        };
        match result {
            Ok(summary) => return Ok(record(true, summary, None)),
            Err(f) => {
                if ctx.is_cancelled() {
                    return Err(StepError::Aborted);
                }
                if started.elapsed() + every > within {
                    let detail = if within > Duration::ZERO {
                        format!(
                            "{}\n(after {attempts} attempts over {})",
                            f.detail,
                            heatcheck_format::format_duration(started.elapsed())
                        )
                    } else {
                        f.detail
                    };
                    return Ok(record(false, f.message, Some(detail)));
                }
                ctx.sleep(every).await?;
            }
        }
    }
}
