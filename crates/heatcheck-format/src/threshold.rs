//! Thresholds of probe expectations (`">= 0.99"`, `"< 500ms"`): parsed at
//! load time by validation and evaluated by the probe statistics.

use std::time::Duration;

use super::duration::parse_duration;

/// A comparison operator of an `expect` threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Eq => "==",
        }
    }

    /// The symbol that holds when this one does not.
    pub fn negated(self) -> &'static str {
        match self {
            Op::Ge => "<",
            Op::Gt => "<=",
            Op::Le => ">",
            Op::Lt => ">=",
            Op::Eq => "!=",
        }
    }
}

/// `">= 0.99"` or `"< 500ms"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold<T> {
    pub op: Op,
    pub value: T,
}

impl<T: PartialOrd> Threshold<T> {
    pub fn holds(&self, actual: &T) -> bool {
        match self.op {
            Op::Ge => actual >= &self.value,
            Op::Gt => actual > &self.value,
            Op::Le => actual <= &self.value,
            Op::Lt => actual < &self.value,
            Op::Eq => actual == &self.value,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid threshold \"{text}\": {reason}")]
pub struct ThresholdError {
    text: String,
    reason: String,
}

fn split_op(text: &str) -> Result<(Op, &str), ThresholdError> {
    let s = text.trim();
    for (sym, op) in [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
    ] {
        if let Some(rest) = s.strip_prefix(sym) {
            return Ok((op, rest.trim()));
        }
    }
    Err(ThresholdError {
        text: text.into(),
        reason: "expected a comparison (>=, >, <=, <, ==) then a value".into(),
    })
}

/// `">= 0.99"`: a rate within 0..1.
pub fn parse_rate(text: &str) -> Result<Threshold<f64>, ThresholdError> {
    let (op, rest) = split_op(text)?;
    let bad = |reason: &str| ThresholdError {
        text: text.into(),
        reason: reason.into(),
    };
    let value: f64 = rest.parse().map_err(|_| bad("expected e.g. \">= 0.99\""))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(bad("the rate must be within 0..1"));
    }
    Ok(Threshold { op, value })
}

/// `"< 0.01"`: any number (PromQL sample values).
pub fn parse_number(text: &str) -> Result<Threshold<f64>, ThresholdError> {
    let (op, rest) = split_op(text)?;
    let value: f64 = rest.parse().map_err(|_| ThresholdError {
        text: text.into(),
        reason: "expected a number, e.g. \"< 0.01\"".into(),
    })?;
    Ok(Threshold { op, value })
}

/// `"< 500ms"`: a duration.
pub fn parse_latency(text: &str) -> Result<Threshold<Duration>, ThresholdError> {
    let (op, rest) = split_op(text)?;
    let value = parse_duration(rest).map_err(|reason| ThresholdError {
        text: text.into(),
        reason,
    })?;
    Ok(Threshold { op, value })
}
