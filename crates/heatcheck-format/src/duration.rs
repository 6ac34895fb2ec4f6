//! The one duration parser of the project: `500ms`, `30s`, `5m`, `1h`, `1m30s`.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text shown whenever a duration does not parse.
pub(crate) const ACCEPTED_FORMS: &str =
    "a duration such as 500ms, 30s, 5m, 1h or 1m30s (units h, m, s, ms, largest first)";

/// JSON-Schema pattern equivalent to [`parse_duration`] (with `minLength: 2`).
pub const DURATION_PATTERN: &str = "^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$";

/// Parse `1h`, `5m`, `30s`, `500ms` and combinations written largest unit
/// first (`1h30m`, `1m30s`, `2s500ms`). Each unit at most once.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration \"{text}\": expected {ACCEPTED_FORMS}");
    let s = text;
    if s.is_empty() {
        return Err(bad());
    }
    // Units in the only order accepted; `rank` enforces largest-first, once each.
    const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let mut total_ms: u64 = 0;
    let mut next_rank = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let rank = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if rank < next_rank {
            return Err(bad());
        }
        next_rank = rank + 1;
        let ms = value.checked_mul(UNITS[rank].1).ok_or_else(bad)?;
        total_ms = total_ms.checked_add(ms).ok_or_else(bad)?;
    }
    Ok(std::time::Duration::from_millis(total_ms))
}

/// Canonical text of a duration, the inverse of [`parse_duration`]
/// (sub-millisecond parts are dropped; they cannot be written in a suite).
pub fn format_duration(d: std::time::Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// A suite duration: (de)serializes as text like `30s` or `1m30s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d)
    }
}

impl std::str::FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Duration)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ACCEPTED_FORMS)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map(Duration).map_err(E::custom)
            }
            // A bare number is ambiguous (seconds? milliseconds?): say so.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration {v}: a unit is required, expected {ACCEPTED_FORMS}"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration {v}: a unit is required, expected {ACCEPTED_FORMS}"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration {v}: a unit is required, expected {ACCEPTED_FORMS}"
                )))
            }
        }
        // `any`, not `str`: a bare number must reach visit_u64 for a clear message.
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "minLength": 2,
            "description": "A duration: 500ms, 30s, 5m, 1h or combinations largest unit first (1m30s).",
            "examples": ["500ms", "30s", "1m30s"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as StdDuration;

    #[test]
    fn parses_single_units() {
        assert_eq!(parse_duration("500ms"), Ok(StdDuration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(StdDuration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(StdDuration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(StdDuration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(StdDuration::ZERO));
    }

    #[test]
    fn parses_combinations_largest_first() {
        assert_eq!(parse_duration("1m30s"), Ok(StdDuration::from_secs(90)));
        assert_eq!(
            parse_duration("1h2m3s4ms"),
            Ok(StdDuration::from_millis(3_723_004))
        );
        assert_eq!(
            parse_duration("2s500ms"),
            Ok(StdDuration::from_millis(2500))
        );
    }

    #[test]
    fn rejects_bad_input_naming_accepted_forms() {
        for bad in [
            "", "5", "5x", "s", "30s1m", "1s1s", "1.5s", "-1s", "5 m", "ms",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("500ms, 30s, 5m, 1h or 1m30s"), "{bad}: {err}");
        }
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn formats_canonically_and_round_trips() {
        for text in ["500ms", "30s", "5m", "1h", "1m30s", "1h1ms", "0s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn schema_pattern_agrees_with_parser() {
        let re = regex::Regex::new(DURATION_PATTERN).unwrap();
        for text in [
            "500ms", "1m30s", "1h", "2s500ms", "5", "5x", "30s1m", "1.5s",
        ] {
            let by_parser = parse_duration(text).is_ok();
            let by_schema = text.len() >= 2 && re.is_match(text);
            assert_eq!(by_parser, by_schema, "{text}");
        }
    }

    #[test]
    fn serde_round_trip_and_bare_number_error() {
        let d: Duration = serde_json::from_value(serde_json::json!("1m30s")).unwrap();
        assert_eq!(d, Duration::from_secs(90));
        assert_eq!(serde_json::to_value(d).unwrap(), serde_json::json!("1m30s"));
        let err = serde_json::from_value::<Duration>(serde_json::json!(30)).unwrap_err();
        assert!(err.to_string().contains("a unit is required"), "{err}");
    }
}
