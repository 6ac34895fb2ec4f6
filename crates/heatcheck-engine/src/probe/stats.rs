//! Statistics of one probe's samples: success rate, exact latency
//! percentiles (sorted samples, nearest rank), outage windows, the trailing
//! success-rate window stop conditions read, and the `expect` thresholds.

use std::fmt;
use std::time::Duration;

use crate::model::{
    AssertionRecord, FailedSample, OutageWindow, ProbeBucket, ProbeStats, MAX_FAILED_SAMPLES,
};
pub(crate) use heatcheck_format::threshold::{parse_latency, parse_rate};
use heatcheck_format::{format_duration, ProbeExpect};
use heatcheck_gateway::units::fmt_latency;

/// The result of one scheduled send. Times are offsets from the probe's start.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Index in the schedule: send `seq` was due at `seq * every`.
    pub(crate) seq: u64,
    /// Intended send time (`seq * every`).
    pub(crate) intended: Duration,
    /// How late the request actually left; None when it was never sent
    /// (refused at the in-flight cap).
    pub lateness: Option<Duration>,
    /// From the intended send time to the end of the response or the failure.
    pub(crate) latency: Duration,
    /// When the result became known.
    pub(crate) completed: Duration,
    pub(crate) ok: bool,
}

/// Consecutive failed sends (offsets from the probe's start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    pub(crate) start: Duration,
    pub(crate) end: Duration,
    pub(crate) failures: u64,
}

impl Outage {
    pub(crate) fn duration(&self) -> Duration {
        self.end - self.start
    }
}

/// Everything the report says about one probe run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub failures: u64,
    /// successes / count; 1.0 for an empty run.
    pub(crate) success_rate: f64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub send_lateness_p99: Duration,
    pub outages: Vec<Outage>,
}

/// Nearest-rank percentile of sorted values (`q` in 0..=1); zero when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs of consecutive failures in schedule order. An outage spans from the
/// first failed send's intended time to the next scheduled send after the
/// last failure, so its length is `failures * every`.
pub(crate) fn outages(by_seq: &[Sample], every: Duration) -> Vec<Outage> {
    let mut out: Vec<Outage> = Vec::new();
    let mut current: Option<Outage> = None;
    for s in by_seq {
        if s.ok {
            out.extend(current.take());
            continue;
        }
        let end = s.intended + every;
        match &mut current {
            Some(o) => {
                o.end = end;
                o.failures += 1;
            }
            None => {
                current = Some(Outage {
                    start: s.intended,
                    end,
                    failures: 1,
                })
            }
        }
    }
    out.extend(current);
    out
}

/// Statistics over every sample. Latency percentiles cover every sent
/// request, answered or not; sends refused at the in-flight cap count as
/// failures but have no latency.
pub fn summarize(samples: &[Sample], every: Duration) -> Summary {
    let mut by_seq = samples.to_vec();
    by_seq.sort_by_key(|s| s.seq);
    let count = by_seq.len() as u64;
    let failures = by_seq.iter().filter(|s| !s.ok).count() as u64;
    let mut latencies: Vec<Duration> = by_seq
        .iter()
        .filter(|s| s.lateness.is_some())
        .map(|s| s.latency)
        .collect();
    latencies.sort_unstable();
    let mut lateness: Vec<Duration> = by_seq.iter().filter_map(|s| s.lateness).collect();
    lateness.sort_unstable();
    Summary {
        count,
        failures,
        success_rate: if count == 0 {
            1.0
        } else {
            (count - failures) as f64 / count as f64
        },
        p50: percentile(&latencies, 0.50),
        p95: percentile(&latencies, 0.95),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        send_lateness_p99: percentile(&lateness, 0.99),
        outages: outages(&by_seq, every),
    }
}

/// Success rate of the sends intended within the trailing `window` before
/// `now` whose results are known: `(rate, results)`. `samples` must be in
/// completion order (as the recorder appends them), so the scan stops at the
/// first result completed before the window. None when no result is known.
pub(crate) fn window_rate(
    samples: &[Sample],
    now: Duration,
    window: Duration,
) -> Option<(f64, usize)> {
    let start = now.saturating_sub(window);
    let (mut ok, mut total) = (0usize, 0usize);
    for s in samples.iter().rev() {
        if s.completed < start {
            break;
        }
        if s.intended >= start {
            total += 1;
            ok += usize::from(s.ok);
        }
    }
    (total > 0).then(|| (ok as f64 / total as f64, total))
}

/// A probe while it runs: totals so far, the trailing window, and the
/// outage going on (offsets from the probe's start).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LiveWindow {
    pub(crate) count: u64,
    pub(crate) failures: u64,
    /// Results of sends intended within the window.
    pub(crate) window_count: u64,
    pub(crate) window_rate: Option<f64>,
    pub(crate) window_p50: Duration,
    pub(crate) window_p99: Duration,
    /// Every result known since `start` failed: the outage so far, at the
    /// interval's resolution (as [`outages`] measures it).
    pub(crate) outage: Option<Outage>,
}

/// What a live view shows of a probe at `now`. `samples` in completion
/// order (as the recorder appends them). The current outage is the run of
/// failures among the latest results: it begins at the earliest of their
/// intended times and lasts `failures * every`, so it stops growing when the
/// probe stops sending.
pub(crate) fn live_window(
    samples: &[Sample],
    now: Duration,
    window: Duration,
    every: Duration,
) -> LiveWindow {
    let failures = samples.iter().filter(|s| !s.ok).count() as u64;
    let start = now.saturating_sub(window);
    let (mut ok, mut total) = (0u64, 0u64);
    let mut latencies = Vec::new();
    for s in samples.iter().rev() {
        if s.completed < start {
            break;
        }
        if s.intended >= start {
            total += 1;
            ok += u64::from(s.ok);
            if s.lateness.is_some() {
                latencies.push(s.latency);
            }
        }
    }
    latencies.sort_unstable();
    let failing: Vec<&Sample> = samples.iter().rev().take_while(|s| !s.ok).collect();
    let outage = failing
        .iter()
        .map(|s| s.intended)
        .min()
        .map(|first| Outage {
            start: first,
            end: first + every * failing.len() as u32,
            failures: failing.len() as u64,
        });
    LiveWindow {
        count: samples.len() as u64,
        failures,
        window_count: total,
        window_rate: (total > 0).then(|| ok as f64 / total as f64),
        window_p50: percentile(&latencies, 0.50),
        window_p99: percentile(&latencies, 0.99),
        outage,
    }
}

/// A rate with at least two and at most four decimals: 0.93, 0.9933, 1.00.
pub fn fmt_rate(r: f64) -> String {
    let s = format!("{r:.4}");
    let trimmed = s.trim_end_matches('0');
    let decimals = trimmed.split('.').nth(1).map_or(0, str::len);
    if decimals < 2 {
        format!("{r:.2}")
    } else {
        trimmed.to_string()
    }
}

struct Check {
    what: &'static str,
    passed: bool,
    actual: String,
    op: &'static str,
    want: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.what, self.actual, self.op, self.want)
    }
}

/// The probe's `expect` evaluated on its statistics, one assertion record
/// per expectation, named `probe NAME` so failures read
/// "probe shop: successRate 0.93 < 0.99". Nothing is checked when the probe
/// sent nothing (e.g. duringFault in a scenario without a fault).
pub(crate) fn expectations(expect: &ProbeExpect, stats: &ProbeStats) -> Vec<AssertionRecord> {
    if stats.count == 0 {
        return Vec::new();
    }
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    if let Some(text) = &expect.success_rate {
        match parse_rate(text) {
            Ok(t) => {
                let passed = t.holds(&stats.success_rate);
                checks.push(Check {
                    what: "successRate",
                    passed,
                    actual: fmt_rate(stats.success_rate),
                    op: if passed {
                        t.op.symbol()
                    } else {
                        t.op.negated()
                    },
                    want: fmt_rate(t.value),
                });
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if let Some(text) = &expect.p99 {
        match parse_latency(text) {
            Ok(t) => {
                let passed = t.holds(&stats.p99);
                checks.push(Check {
                    what: "p99",
                    passed,
                    actual: fmt_latency(stats.p99),
                    op: if passed {
                        t.op.symbol()
                    } else {
                        t.op.negated()
                    },
                    want: format_duration(t.value),
                });
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if let Some(max) = &expect.max_outage {
        let longest = stats.longest_outage();
        let passed = longest <= max.0;
        checks.push(Check {
            what: "maxOutage",
            passed,
            actual: fmt_latency(longest),
            op: if passed { "<=" } else { ">" },
            want: format_duration(max.0),
        });
    }
    let record = |passed: bool, message: String| AssertionRecord {
        name: format!("probe {}", stats.name),
        passed,
        detail: (!passed).then(|| probe_line(stats)),
        message,
        attempts: 1,
        duration: Duration::ZERO,
        at_ms: None,
    };
    let mut out: Vec<AssertionRecord> = checks
        .into_iter()
        .map(|c| record(c.passed, c.to_string()))
        .collect();
    out.extend(errors.into_iter().map(|e| record(false, e)));
    out
}

/// The report entry of one probe run. `offset` is the probe's start
/// relative to the case start.
pub(crate) fn to_stats(
    name: &str,
    mode: &str,
    every: Duration,
    offset: Duration,
    s: &Summary,
) -> ProbeStats {
    let ms = |d: Duration| (offset + d).as_millis() as u64;
    ProbeStats {
        name: name.to_string(),
        mode: mode.to_string(),
        every,
        started_ms: offset.as_millis() as u64,
        count: s.count,
        failures: s.failures,
        success_rate: s.success_rate,
        p50: s.p50,
        p95: s.p95,
        p99: s.p99,
        max: s.max,
        send_lateness_p99: s.send_lateness_p99,
        outages: s
            .outages
            .iter()
            .map(|o| OutageWindow {
                start_ms: ms(o.start),
                end_ms: ms(o.end),
                duration: o.duration(),
                failures: o.failures,
            })
            .collect(),
        buckets: Vec::new(),
        failed_samples: Vec::new(),
        failed_samples_dropped: 0,
    }
}

/// Per-second buckets of intended send time and the failed sends (bounded),
/// as offsets from the case start (`offset` is the probe's start in the case).
pub(crate) fn timeline(
    samples: &[Sample],
    offset: Duration,
) -> (Vec<ProbeBucket>, Vec<FailedSample>, u64) {
    let ms = |d: Duration| (offset + d).as_millis() as u64;
    let mut by_second: std::collections::BTreeMap<u64, Vec<&Sample>> = Default::default();
    for s in samples {
        by_second.entry(ms(s.intended) / 1000).or_default().push(s);
    }
    let buckets = by_second
        .into_iter()
        .map(|(sec, list)| {
            let mut lat: Vec<Duration> = list
                .iter()
                .filter(|s| s.lateness.is_some())
                .map(|s| s.latency)
                .collect();
            lat.sort_unstable();
            ProbeBucket {
                start_ms: sec * 1000,
                count: list.len() as u64,
                ok: list.iter().filter(|s| s.ok).count() as u64,
                p50: percentile(&lat, 0.50),
                p99: percentile(&lat, 0.99),
                max: lat.last().copied().unwrap_or_default(),
            }
        })
        .collect();
    let mut failed: Vec<&Sample> = samples.iter().filter(|s| !s.ok).collect();
    failed.sort_by_key(|s| s.seq);
    let dropped = failed.len().saturating_sub(MAX_FAILED_SAMPLES) as u64;
    let kept = failed
        .into_iter()
        .take(MAX_FAILED_SAMPLES)
        .map(|s| FailedSample {
            at_ms: ms(s.intended),
            latency: if s.lateness.is_some() {
                s.latency
            } else {
                Duration::ZERO
            },
            not_sent: s.lateness.is_none(),
        })
        .collect();
    (buckets, kept, dropped)
}

/// `probe shop (continuous, every 50ms): 120 sent, 99.17% ok, p50 2ms p95 3ms
/// p99 40ms max 41ms, 1 outage (longest 50ms)`
pub fn probe_line(p: &ProbeStats) -> String {
    let outages = match p.outages.len() {
        0 => "no outage".to_string(),
        n => format!(
            "{n} outage{} (longest {})",
            if n == 1 { "" } else { "s" },
            fmt_latency(p.longest_outage())
        ),
    };
    format!(
        "probe {} ({}, every {}): {} sent, {:.2}% ok, p50 {} p95 {} p99 {} max {}, {outages}",
        p.name.split_whitespace().collect::<Vec<_>>().join(" "),
        p.mode,
        fmt_latency(p.every),
        p.count,
        p.success_rate * 100.0,
        fmt_latency(p.p50),
        fmt_latency(p.p95),
        fmt_latency(p.p99),
        fmt_latency(p.max),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_millis(10);

    fn sample(seq: u64, ok: bool, latency_ms: u64) -> Sample {
        let intended = EVERY * seq as u32;
        Sample {
            seq,
            intended,
            lateness: Some(Duration::ZERO),
            latency: Duration::from_millis(latency_ms),
            completed: intended + Duration::from_millis(latency_ms),
            ok,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.50), ms(50));
        assert_eq!(percentile(&sorted, 0.95), ms(95));
        assert_eq!(percentile(&sorted, 0.99), ms(99));
        assert_eq!(percentile(&sorted, 1.0), ms(100));
        assert_eq!(percentile(&sorted, 0.0), ms(1));
        assert_eq!(percentile(&[ms(7)], 0.99), ms(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        // 10 values: p95 is the 10th (ceil(9.5)), p50 the 5th.
        let ten: Vec<Duration> = (1..=10).map(ms).collect();
        assert_eq!(percentile(&ten, 0.95), ms(10));
        assert_eq!(percentile(&ten, 0.5), ms(5));
    }

    #[test]
    fn summary_counts_rates_and_tail() {
        // 200 samples, out of completion order; one slow tail of 2.
        let mut samples: Vec<Sample> = (0..200).map(|i| sample(i, i % 50 != 7, 5)).collect();
        samples[197].latency = ms(800);
        samples[198].latency = ms(900);
        samples[199].latency = ms(1000);
        samples.reverse();
        let s = summarize(&samples, EVERY);
        assert_eq!((s.count, s.failures), (200, 4));
        assert!((s.success_rate - 0.98).abs() < 1e-9);
        assert_eq!(
            (s.p50, s.p95, s.p99, s.max),
            (ms(5), ms(5), ms(800), ms(1000))
        );
        assert_eq!(s.outages.len(), 4);
        assert_eq!(s.outages[0].start, ms(70));
        assert_eq!(s.outages[0].duration(), EVERY);
    }

    #[test]
    fn outages_are_runs_of_consecutive_failures() {
        let pattern = [
            true, false, false, false, true, true, false, true, false, false,
        ];
        let samples: Vec<Sample> = pattern
            .iter()
            .enumerate()
            .map(|(i, ok)| sample(i as u64, *ok, 1))
            .collect();
        let o = outages(&samples, EVERY);
        assert_eq!(
            o,
            vec![
                Outage {
                    start: ms(10),
                    end: ms(40),
                    failures: 3
                },
                Outage {
                    start: ms(60),
                    end: ms(70),
                    failures: 1
                },
                // Still failing at the end: closed at the next scheduled send.
                Outage {
                    start: ms(80),
                    end: ms(100),
                    failures: 2
                },
            ]
        );
        assert_eq!(o[0].duration(), ms(30));
        assert!(outages(&samples[4..6], EVERY).is_empty());
    }

    #[test]
    fn refused_sends_fail_but_have_no_latency() {
        let mut refused = sample(1, false, 0);
        refused.lateness = None;
        let s = summarize(&[sample(0, true, 3), refused], EVERY);
        assert_eq!((s.count, s.failures, s.max, s.p50), (2, 1, ms(3), ms(3)));
    }

    #[test]
    fn window_rate_reads_the_trailing_window_only() {
        // 100 sends at 10ms: the first 50 fail, the rest succeed.
        let samples: Vec<Sample> = (0..100).map(|i| sample(i, i >= 50, 1)).collect();
        let (r, n) = window_rate(&samples, ms(1000), ms(200)).unwrap();
        assert_eq!((r, n), (1.0, 20));
        // At 600ms only the results known by then exist.
        let known: Vec<Sample> = samples
            .iter()
            .filter(|s| s.completed <= ms(600))
            .cloned()
            .collect();
        let (r, n) = window_rate(&known, ms(600), ms(200)).unwrap();
        // Intended 400..=590 with results by 600: 10 failed, 10 ok.
        assert_eq!(n, 20);
        assert!((r - 0.5).abs() < 1e-9, "{r}");
        assert!(window_rate(&samples, ms(5000), ms(100)).is_none());
        assert!(window_rate(&[], ms(10), ms(10)).is_none());
    }

    #[test]
    fn live_window_shows_the_recent_past_and_the_outage_going_on() {
        // 100 sends at 10ms, answered in 5ms; 60..=79 fail, later ones are ok.
        let samples: Vec<Sample> = (0..100)
            .map(|i| sample(i, !(60..80).contains(&i), if i < 50 { 1 } else { 5 }))
            .collect();
        let at = |t: u64| -> Vec<Sample> {
            samples
                .iter()
                .filter(|s| s.completed <= ms(t))
                .cloned()
                .collect()
        };
        // Before the outage: all ok; p50/p99 over the last 200ms only
        // (sends 31..=50 known by 510ms: 19 answered in 1ms, one in 5ms).
        let w = live_window(&at(510), ms(510), ms(200), EVERY);
        assert_eq!((w.count, w.failures, w.window_count), (51, 0, 20));
        assert_eq!(w.window_rate, Some(1.0));
        assert_eq!((w.window_p50, w.window_p99), (ms(1), ms(5)));
        assert_eq!(w.outage, None);
        // In the outage: it began with send 60 (600ms), 10 failures so far.
        let w = live_window(&at(700), ms(700), ms(200), EVERY);
        assert_eq!(w.failures, 10);
        assert_eq!(
            w.outage,
            Some(Outage {
                start: ms(600),
                end: ms(700),
                failures: 10
            })
        );
        assert_eq!(w.window_count, 20);
        assert!((w.window_rate.unwrap() - 0.5).abs() < 1e-9);
        // Over: the outage is history, the totals keep it.
        let w = live_window(&at(900), ms(900), ms(100), EVERY);
        assert_eq!((w.failures, w.outage), (20, None));
        assert_eq!(w.window_rate, Some(1.0));
        // A probe that stopped mid-outage: the outage ends with its last send.
        let stopped: Vec<Sample> = samples[..70].to_vec();
        let w = live_window(&stopped, ms(5000), ms(200), EVERY);
        assert_eq!(w.outage.unwrap().duration(), ms(100));
        assert_eq!((w.window_count, w.window_rate), (0, None));
        assert_eq!(
            live_window(&[], ms(10), ms(10), EVERY),
            LiveWindow::default()
        );
    }

    #[test]
    fn thresholds_parse_and_compare() {
        let t = parse_rate(">= 0.99").unwrap();
        assert!(t.holds(&0.99) && !t.holds(&0.98));
        assert!(parse_rate("<1").unwrap().holds(&0.5));
        assert!(parse_rate(">= 1.5").is_err());
        assert!(parse_rate("0.9").is_err());
        let l = parse_latency("< 500ms").unwrap();
        assert_eq!(l.value, ms(500));
        assert!(l.holds(&ms(499)) && !l.holds(&ms(500)));
        assert!(parse_latency("< fast").is_err());
    }

    #[test]
    fn rates_print_compactly() {
        assert_eq!(fmt_rate(0.93), "0.93");
        assert_eq!(fmt_rate(1.0), "1.00");
        assert_eq!(fmt_rate(0.98765), "0.9877");
        assert_eq!(fmt_rate(0.5), "0.50");
    }

    fn stats(rate: f64, p99: Duration, outage: Duration) -> ProbeStats {
        let s = Summary {
            count: 100,
            failures: ((1.0 - rate) * 100.0).round() as u64,
            success_rate: rate,
            p99,
            outages: if outage.is_zero() {
                vec![]
            } else {
                vec![Outage {
                    start: ms(100),
                    end: ms(100) + outage,
                    failures: 1,
                }]
            },
            ..Default::default()
        };
        to_stats("shop availability", "continuous", EVERY, ms(20), &s)
    }

    #[test]
    fn expectations_become_assertions() {
        let expect = ProbeExpect {
            success_rate: Some(">= 0.99".into()),
            p99: Some("< 500ms".into()),
            max_outage: Some(heatcheck_format::Duration::from_millis(100)),
        };
        let ok = expectations(&expect, &stats(1.0, ms(120), ms(50)));
        assert_eq!(ok.len(), 3);
        assert!(ok.iter().all(|a| a.passed), "{ok:?}");
        assert_eq!(ok[0].message, "successRate 1.00 >= 0.99");
        let bad = expectations(&expect, &stats(0.93, ms(612), ms(300)));
        let messages: Vec<String> = bad
            .iter()
            .filter(|a| !a.passed)
            .map(|a| format!("{}: {}", a.name, a.message))
            .collect();
        assert_eq!(
            messages,
            vec![
                "probe shop availability: successRate 0.93 < 0.99",
                "probe shop availability: p99 612ms >= 500ms",
                "probe shop availability: maxOutage 300ms > 100ms",
            ]
        );
        let mut empty = stats(1.0, ms(1), Duration::ZERO);
        empty.count = 0;
        assert!(expectations(&expect, &empty).is_empty());
    }

    #[test]
    fn timeline_buckets_per_second_and_bounds_failed_samples() {
        let sample = |seq: u64, ok: bool, lat: u64| Sample {
            seq,
            intended: ms(seq * 100),
            lateness: Some(ms(0)),
            latency: ms(lat),
            completed: ms(seq * 100 + lat),
            ok,
        };
        // 25 sends at 100ms from 500ms into the case: seconds 0, 1, 2.
        let samples: Vec<Sample> = (0..25).map(|i| sample(i, i % 5 != 0, i + 1)).collect();
        let (buckets, failed, dropped) = timeline(&samples, ms(500));
        assert_eq!(
            buckets.iter().map(|b| b.start_ms).collect::<Vec<_>>(),
            [0, 1000, 2000]
        );
        assert_eq!(
            buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
            [5, 10, 10]
        );
        assert_eq!(buckets[0].ok, 4);
        assert_eq!(buckets[0].max, ms(5));
        assert_eq!(failed.len(), 5);
        assert_eq!(failed[1].at_ms, 1000);
        assert_eq!(dropped, 0);
        // A long outage keeps the first MAX_FAILED_SAMPLES and counts the rest.
        let many: Vec<Sample> = (0..(MAX_FAILED_SAMPLES as u64 + 7))
            .map(|i| sample(i, false, 1))
            .collect();
        let (_, failed, dropped) = timeline(&many, Duration::ZERO);
        assert_eq!(failed.len(), MAX_FAILED_SAMPLES);
        assert_eq!(dropped, 7);
    }

    #[test]
    fn a_30_minute_game_day_at_50_per_second_stays_small() {
        // Every send failing is the worst case for the raw samples.
        let every = ms(20);
        let samples: Vec<Sample> = (0..(30 * 60 * 50u64))
            .map(|i| Sample {
                seq: i,
                intended: every * i as u32,
                lateness: Some(ms(0)),
                latency: ms(2000),
                completed: every * i as u32 + ms(2000),
                ok: false,
            })
            .collect();
        let mut st = to_stats(
            "p",
            "continuous",
            every,
            Duration::ZERO,
            &summarize(&samples, every),
        );
        (st.buckets, st.failed_samples, st.failed_samples_dropped) =
            timeline(&samples, Duration::ZERO);
        let bytes = serde_json::to_string(&st).unwrap().len();
        assert_eq!(st.buckets.len(), 1800);
        assert!(bytes < 1_000_000, "{bytes} bytes");
    }

    #[test]
    fn report_offsets_are_from_the_case_start() {
        let st = stats(0.99, ms(1), ms(30));
        assert_eq!(st.started_ms, 20);
        assert_eq!(st.outages[0].start_ms, 120);
        assert_eq!(st.outages[0].end_ms, 150);
        assert_eq!(st.longest_outage(), ms(30));
    }

    #[test]
    fn probe_lines_show_rate_percentiles_and_outages() {
        use crate::model::OutageWindow;
        let ms = Duration::from_millis;
        let mut p = ProbeStats {
            name: "shop".into(),
            mode: "continuous".into(),
            every: ms(50),
            started_ms: 0,
            count: 120,
            failures: 1,
            success_rate: 119.0 / 120.0,
            p50: Duration::from_micros(420),
            p95: ms(3),
            p99: ms(40),
            max: ms(41),
            send_lateness_p99: ms(1),
            outages: vec![],
            buckets: vec![],
            failed_samples: vec![],
            failed_samples_dropped: 0,
        };
        assert_eq!(
            probe_line(&p),
            "probe shop (continuous, every 50ms): 120 sent, 99.17% ok, p50 0.42ms p95 3.00ms p99 40ms max 41ms, no outage"
        );
        p.outages = vec![OutageWindow {
            start_ms: 100,
            end_ms: 150,
            duration: ms(50),
            failures: 1,
        }];
        assert!(probe_line(&p).ends_with("1 outage (longest 50ms)"));
    }
}
