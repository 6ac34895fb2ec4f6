//! Continuous HTTP probes. Sends follow an absolute clock (send `i` is due
//! at `t0 + i * every`, so the schedule never drifts), each request runs in
//! its own task (a stalled server never slows the schedule), and latency is
//! measured from the intended send time, so waiting on a slow server or a
//! late scheduler is counted (no coordinated omission). Past the in-flight
//! cap a send is recorded as failed instead of being delayed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::stats::{self, Sample};
use crate::context::SuiteContext;
use crate::model::{AssertionRecord, OutageWindow, ProbeLive, ProbeStats};
use heatcheck_format::{HttpRequestSpec, Probe, ProbeMode, Templater};

/// Per-request timeout of a probe without its own `http.timeout`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests one probe may have outstanding; beyond it sends fail at once.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 512;
/// Sends of a `before` / `after` probe (one burst at the probe's interval).
pub(crate) const BURST_SENDS: u32 = 10;

/// A probe request with its templates rendered (once per scenario).
#[derive(Clone, Debug)]
pub struct ProbeRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) timeout: Duration,
}

impl ProbeRequest {
    /// A GET with the default timeout.
    pub fn get(url: &str) -> Result<Self, String> {
        Ok(ProbeRequest {
            method: Method::GET,
            url: Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?,
            headers: HeaderMap::new(),
            body: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    pub(crate) fn render(spec: &HttpRequestSpec, templater: &Templater) -> Result<Self, String> {
        let render = |s: &str| templater.render(s).map_err(|e| e.to_string());
        let mut req = ProbeRequest::get(&render(&spec.url)?)?;
        req.method = Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("invalid HTTP method {:?}", spec.method))?;
        for (k, v) in &spec.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("invalid header name {k:?}: {e}"))?;
            let value = HeaderValue::from_str(&render(v)?)
                .map_err(|e| format!("invalid value of header {k}: {e}"))?;
            req.headers.insert(name, value);
        }
        if let Some(b) = &spec.body {
            req.body = Some(Bytes::from(render(b)?));
        }
        if let Some(t) = spec.timeout {
            req.timeout = t.0;
        }
        Ok(req)
    }

    /// One attempt: success is a 2xx answer whose body arrived in time.
    async fn send(&self, client: &reqwest::Client) -> bool {
        let mut rb = client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone());
        if let Some(b) = &self.body {
            rb = rb.body(b.clone());
        }
        let attempt = async {
            let resp = rb.send().await?;
            let status = resp.status();
            // Read the body so the connection goes back to the pool.
            resp.bytes().await?;
            Ok::<_, reqwest::Error>(status.is_success())
        };
        matches!(
            tokio::time::timeout(self.timeout, attempt).await,
            Ok(Ok(true))
        )
    }
}

/// How often to send and how many requests may be outstanding.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub(crate) every: Duration,
    pub(crate) max_in_flight: usize,
}

impl Schedule {
    pub fn every(every: Duration) -> Self {
        Schedule {
            every,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// The live results of one probe, shared with the stop-condition watcher.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<RecorderState>>,
}

#[derive(Default)]
struct RecorderState {
    t0: Option<Instant>,
    /// In completion order (appended under the lock).
    samples: Vec<Sample>,
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, RecorderState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin(&self, t0: Instant) {
        self.lock().t0.get_or_insert(t0);
    }

    fn record(&self, seq: u64, intended: Instant, lateness: Option<Duration>, ok: bool) {
        let mut st = self.lock();
        let now = Instant::now();
        let t0 = st.t0.unwrap_or(intended);
        st.samples.push(Sample {
            seq,
            intended: intended.saturating_duration_since(t0),
            lateness,
            latency: now.saturating_duration_since(intended),
            completed: now.saturating_duration_since(t0),
            ok,
        });
    }

    /// When the probe started sending, if it has.
    pub(crate) fn started(&self) -> Option<Instant> {
        self.lock().t0
    }

    /// Results so far.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.lock().samples.clone()
    }

    /// The success rate over the trailing `window`, once the probe has run
    /// for at least that long: `(rate, results)`.
    pub(crate) fn window_rate(&self, window: Duration) -> Option<(f64, usize)> {
        let st = self.lock();
        let ran = st.t0?.elapsed();
        if ran < window {
            return None;
        }
        stats::window_rate(&st.samples, ran, window)
    }
}

impl Recorder {
    /// The probe as a live view shows it now; None before it started.
    pub(crate) fn live(&self, window: Duration, every: Duration) -> Option<stats::LiveWindow> {
        let st = self.lock();
        let now = st.t0?.elapsed();
        Some(stats::live_window(&st.samples, now, window, every))
    }
}

/// A probe sending on its schedule until its deadline (or `stop`).
pub struct RunningProbe {
    deadline: watch::Sender<Option<Instant>>,
    task: JoinHandle<()>,
    recorder: Recorder,
    t0: Instant,
}

/// Starts sending at once; `until` ends the schedule (None: until `stop`).
pub fn start(
    client: reqwest::Client,
    request: Arc<ProbeRequest>,
    schedule: Schedule,
    recorder: Recorder,
    until: Option<Instant>,
) -> RunningProbe {
    let t0 = Instant::now();
    recorder.begin(t0);
    let (deadline, rx) = watch::channel(until);
    let task = tokio::spawn(schedule_loop(
        client,
        request,
        schedule,
        recorder.clone(),
        t0,
        rx,
    ));
    RunningProbe {
        deadline,
        task,
        recorder,
        t0,
    }
}

impl RunningProbe {
    pub(crate) fn t0(&self) -> Instant {
        self.t0
    }

    /// Moves a bounded schedule's end later (never earlier; unbounded stays so).
    pub(crate) fn extend_until(&self, at: Instant) {
        self.deadline.send_modify(|d| {
            if let Some(d) = d {
                *d = (*d).max(at);
            }
        });
    }

    /// No send is due from now on; outstanding requests still complete.
    pub(crate) fn stop(&self) {
        let now = Instant::now();
        self.deadline
            .send_modify(|d| *d = Some(d.map_or(now, |d| d.min(now))));
    }

    /// Waits for the schedule to end and every outstanding request to
    /// finish (each is bounded by its timeout), then returns the samples.
    pub async fn finish(self) -> Vec<Sample> {
        let _ = self.task.await;
        self.recorder.samples()
    }
}

fn due(t0: Instant, every: Duration, seq: u64) -> Instant {
    let nanos = every.as_nanos().saturating_mul(u128::from(seq));
    t0 + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

async fn schedule_loop(
    client: reqwest::Client,
    request: Arc<ProbeRequest>,
    schedule: Schedule,
    recorder: Recorder,
    t0: Instant,
    mut deadline: watch::Receiver<Option<Instant>>,
) {
    let mut tasks = JoinSet::new();
    let mut seq = 0u64;
    loop {
        let intended = due(t0, schedule.every, seq);
        if deadline.borrow_and_update().is_some_and(|d| intended >= d) {
            break;
        }
        tokio::select! {
            biased;
            changed = deadline.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
            // A late wake-up sends at once: the schedule catches up, never shifts.
            _ = tokio::time::sleep_until(intended.into()) => {}
        }
        while tasks.try_join_next().is_some() {}
        if tasks.len() >= schedule.max_in_flight {
            recorder.record(seq, intended, None, false);
        } else {
            let (client, request, recorder) = (client.clone(), request.clone(), recorder.clone());
            tasks.spawn(async move {
                let lateness = Instant::now().saturating_duration_since(intended);
                let ok = request.send(&client).await;
                recorder.record(seq, intended, Some(lateness), ok);
            });
        }
        seq += 1;
    }
    while tasks.join_next().await.is_some() {}
}

/// Live recorders by probe name, for stop conditions.
#[derive(Clone, Default)]
pub(crate) struct LiveProbes(Arc<HashMap<String, Recorder>>);

impl LiveProbes {
    pub(crate) fn get(&self, name: &str) -> Option<&Recorder> {
        self.0.get(name)
    }
}

/// The trailing window of the live view (`ProbeLive`).
pub(crate) const LIVE_WINDOW: Duration = Duration::from_secs(10);

/// The scenario's probes as live views read them (the engine's `probeWindow`
/// events), without holding the scenario's `ScenarioProbes`.
#[derive(Clone)]
pub(crate) struct ProbeWatch {
    probes: Vec<(String, ProbeMode, Duration, Recorder)>,
    case_started: Instant,
}

impl ProbeWatch {
    /// Each probe that has started, in suite order.
    pub(crate) fn snapshot(&self) -> Vec<ProbeLive> {
        self.probes
            .iter()
            .filter_map(|(name, mode, every, rec)| {
                let w = rec.live(LIVE_WINDOW, *every)?;
                let offset = rec.started()?.saturating_duration_since(self.case_started);
                let ms = |d: Duration| (offset + d).as_millis() as u64;
                Some(ProbeLive {
                    name: name.clone(),
                    mode: mode_name(*mode).into(),
                    count: w.count,
                    failures: w.failures,
                    window: LIVE_WINDOW,
                    window_count: w.window_count,
                    window_success_rate: w.window_rate,
                    window_p50: w.window_p50,
                    window_p99: w.window_p99,
                    outage: w.outage.map(|o| OutageWindow {
                        start_ms: ms(o.start),
                        end_ms: ms(o.end),
                        duration: o.duration(),
                        failures: o.failures,
                    }),
                })
            })
            .collect()
    }
}

fn mode_name(m: ProbeMode) -> &'static str {
    match m {
        ProbeMode::Continuous => "continuous",
        ProbeMode::DuringFault => "duringFault",
        ProbeMode::Before => "before",
        ProbeMode::After => "after",
    }
}

struct Entry {
    probe: Probe,
    request: Result<Arc<ProbeRequest>, String>,
    recorder: Recorder,
    running: Option<RunningProbe>,
    t0: Option<Instant>,
    samples: Vec<Sample>,
}

impl Entry {
    fn start(&mut self, client: &reqwest::Client, until: Option<Instant>) {
        if self.running.is_some() || self.t0.is_some() {
            return;
        }
        if let Ok(req) = &self.request {
            let run = start(
                client.clone(),
                req.clone(),
                Schedule::every(self.probe.every.0),
                self.recorder.clone(),
                until,
            );
            self.t0 = Some(run.t0());
            self.running = Some(run);
        }
    }

    async fn collect(&mut self) {
        if let Some(run) = self.running.take() {
            self.samples = run.finish().await;
        }
    }
}

/// The suite's probes and the scenario's own over one scenario, driven by the engine through the
/// scenario's phases: `run_before`, `start_continuous`, `fault_injected`
/// (per fault step), `run_after`, `stop`, then `finish`.
pub(crate) struct ScenarioProbes {
    client: reqwest::Client,
    case_started: Instant,
    entries: Vec<Entry>,
}

impl ScenarioProbes {
    /// Renders every probe's request (a rendering error fails that probe):
    /// the suite's, then `own` (the scenario's).
    pub(crate) fn new(ctx: &SuiteContext, own: &[Probe], case_started: Instant) -> Self {
        let entries = ctx
            .suite
            .spec
            .probes
            .iter()
            .chain(own)
            .map(|p| Entry {
                probe: p.clone(),
                request: ProbeRequest::render(&p.http, &ctx.templater).map(Arc::new),
                recorder: Recorder::default(),
                running: None,
                t0: None,
                samples: Vec::new(),
            })
            .collect();
        ScenarioProbes {
            client: ctx.http.clone(),
            case_started,
            entries,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn live(&self) -> LiveProbes {
        LiveProbes(Arc::new(
            self.entries
                .iter()
                .map(|e| (e.probe.name.clone(), e.recorder.clone()))
                .collect(),
        ))
    }

    pub(crate) fn watch(&self) -> ProbeWatch {
        ProbeWatch {
            probes: self
                .entries
                .iter()
                .map(|e| {
                    (
                        e.probe.name.clone(),
                        e.probe.mode,
                        e.probe.every.0,
                        e.recorder.clone(),
                    )
                })
                .collect(),
            case_started: self.case_started,
        }
    }

    async fn burst(&mut self, mode: ProbeMode) {
        let now = Instant::now();
        for e in self.entries.iter_mut().filter(|e| e.probe.mode == mode) {
            let until = now + e.probe.every.0 * BURST_SENDS;
            e.start(&self.client, Some(until));
        }
        for e in self.entries.iter_mut().filter(|e| e.probe.mode == mode) {
            e.collect().await;
        }
    }

    /// `before` probes: one burst, finished before the first step.
    pub(crate) async fn run_before(&mut self) {
        self.burst(ProbeMode::Before).await;
    }

    /// `continuous` probes: from now until `stop`.
    pub(crate) fn start_continuous(&mut self) {
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.probe.mode == ProbeMode::Continuous)
        {
            e.start(&self.client, None);
        }
    }

    /// A fault step's chaos is in place for `active_for`: `duringFault`
    /// probes run from the first injection to the last fault's end (or `stop`).
    pub(crate) fn fault_injected(&mut self, active_for: Duration) {
        let until = Instant::now() + active_for;
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.probe.mode == ProbeMode::DuringFault)
        {
            match &e.running {
                Some(run) => run.extend_until(until),
                None => e.start(&self.client, Some(until)),
            }
        }
    }

    /// `after` probes: one burst after the assertions.
    pub(crate) async fn run_after(&mut self) {
        self.burst(ProbeMode::After).await;
    }

    /// Ends every schedule (outstanding requests still complete).
    pub(crate) fn stop(&self) {
        for run in self.entries.iter().filter_map(|e| e.running.as_ref()) {
            run.stop();
        }
    }

    /// Statistics per probe, and its expectations as assertion records.
    pub(crate) async fn finish(mut self) -> (Vec<ProbeStats>, Vec<AssertionRecord>) {
        self.stop();
        let mut all_stats = Vec::new();
        let mut records = Vec::new();
        for e in &mut self.entries {
            e.collect().await;
            if let Err(err) = &e.request {
                records.push(AssertionRecord {
                    name: format!("probe {}", e.probe.name),
                    passed: false,
                    message: format!("cannot send the probe: {err}"),
                    detail: None,
                    attempts: 0,
                    duration: Duration::ZERO,
                    at_ms: None,
                });
                continue;
            }
            let offset =
                e.t0.map(|t| t.saturating_duration_since(self.case_started))
                    .unwrap_or_default();
            let summary = stats::summarize(&e.samples, e.probe.every.0);
            let mut st = stats::to_stats(
                &e.probe.name,
                mode_name(e.probe.mode),
                e.probe.every.0,
                offset,
                &summary,
            );
            (st.buckets, st.failed_samples, st.failed_samples_dropped) =
                stats::timeline(&e.samples, offset);
            records.extend(stats::expectations(&e.probe.expect, &st));
            all_stats.push(st);
        }
        (all_stats, records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// A local server answering 200, except that requests arriving inside
    /// `stall` (offsets from `origin`) are held until the stall ends.
    async fn server(origin: Instant, stall: Option<(Duration, Duration)>) -> SocketAddr {
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move {
                if let Some((from, to)) = stall {
                    let now = origin.elapsed();
                    if now >= from && now < to {
                        tokio::time::sleep(to - now).await;
                    }
                }
                "ok"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        crate::probe::http::client()
    }

    /// Sends with `intended < bound` on a schedule of `every`.
    fn sends_before(bound: Duration, every: Duration) -> usize {
        bound.as_nanos().div_ceil(every.as_nanos()) as usize
    }

    fn quantile(mut v: Vec<Duration>, q: f64) -> Duration {
        v.sort();
        stats::percentile(&v, q)
    }

    // The bounds below hold on a loaded 2-core machine: exact counts come
    // from the absolute schedule (not from how fast anything ran), lower
    // bounds come from what the server enforces, and upper bounds are on
    // quantiles with a margin far below what a broken implementation shows
    // (a serialized schedule or a latency that ignores the wait is off by
    // about a second).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_server_does_not_slow_the_schedule_and_latency_counts_the_wait() {
        let origin = Instant::now();
        // The server holds every request that arrives between 300ms and
        // 1800ms after `origin`, until 1800ms.
        let addr = server(origin, Some((ms(300), ms(1800)))).await;
        let req = Arc::new(ProbeRequest::get(&format!("http://{addr}/")).unwrap());
        let every = ms(10);
        let client = client();
        let until = Instant::now() + ms(2000);
        let run = start(
            client,
            req,
            Schedule::every(every),
            Recorder::default(),
            Some(until),
        );
        // The stall in the probe's own time (t0 is a little after origin).
        let skew = run.t0() - origin;
        let (stall_from, stall_to) = (ms(300).saturating_sub(skew), ms(1800) - skew);
        let expected = sends_before(until - run.t0(), every);
        let samples = run.finish().await;
        let s = stats::summarize(&samples, every);
        assert_eq!(
            s.count, expected as u64,
            "sends stayed on the absolute schedule"
        );
        assert_eq!(s.failures, 0);
        let mut by_seq = samples.clone();
        by_seq.sort_by_key(|s| s.seq);
        for (i, smp) in by_seq.iter().enumerate() {
            assert_eq!(
                smp.intended,
                every * i as u32,
                "intended times are i * every"
            );
        }
        // No drift: sends left close to their due time during the stall as
        // well. A schedule that waited on the server would leave most sends
        // of the stall late by up to 1.5s (p75 about 1s); a loaded machine
        // would have to freeze for most of a second to get near 300ms.
        let lateness: Vec<Duration> = by_seq.iter().map(|s| s.lateness.unwrap()).collect();
        let p75 = quantile(lateness, 0.75);
        assert!(p75 < ms(300), "sends left on time: lateness p75 {p75:?}");

        // A send due at 400ms waited until the stall ended: its latency
        // (from the intended send time) includes that wait.
        let stalled = by_seq.iter().find(|s| s.intended == ms(400)).unwrap();
        let waited = stall_to - ms(400);
        assert!(
            stalled.latency >= waited && stalled.latency < waited + ms(1500),
            "latency includes the {waited:?} wait: {:?}",
            stalled.latency
        );
        // Sends issued during the stall were concurrent, not serialized: they
        // were all held by the server, so none completed before the stall
        // ended, and most completed together just after it.
        let during: Vec<&Sample> = by_seq
            .iter()
            .filter(|s| s.intended >= stall_from + ms(100) && s.intended < stall_to - ms(100))
            .collect();
        assert!((129..=131).contains(&during.len()), "{}", during.len());
        assert!(
            during.iter().all(|s| s.completed >= stall_to),
            "held until the stall ended"
        );
        let completed_after: Vec<Duration> =
            during.iter().map(|s| s.completed - stall_to).collect();
        let p80 = quantile(completed_after, 0.8);
        assert!(
            p80 < ms(700),
            "80% completed within 700ms of the stall's end: {p80:?}"
        );
        assert!(s.p99 >= ms(1300), "p99 shows the stall: {:?}", s.p99);
        // Sends due in the first 1000ms of the stall waited 500ms or more
        // (about 100 of 200); the other 100 took under 500ms unless the
        // machine stalled them too.
        let slow = by_seq.iter().filter(|s| s.latency >= ms(500)).count();
        assert!(
            (99..=130).contains(&slow),
            "about 100 of 200 sends were stalled 500ms+: {slow}"
        );
        // 140 of 200 sends waited 100ms or more: even p50 shows it.
        assert!(s.p50 >= ms(100), "{:?}", s.p50);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_flight_cap_fails_sends_instead_of_delaying_them() {
        let origin = Instant::now();
        let addr = server(origin, Some((Duration::ZERO, ms(3000)))).await;
        let req = Arc::new(ProbeRequest {
            timeout: ms(600),
            ..ProbeRequest::get(&format!("http://{addr}/")).unwrap()
        });
        let client = client();
        let until = Instant::now() + ms(200);
        let run = start(
            client,
            req,
            Schedule {
                every: ms(10),
                max_in_flight: 5,
            },
            Recorder::default(),
            Some(until),
        );
        let expected = sends_before(until - run.t0(), ms(10));
        let samples = run.finish().await;
        assert_eq!(samples.len(), expected);
        // Nothing completes within the 200ms (the server holds everything
        // for 3s, the timeout is 600ms): exactly the cap was sent.
        let refused = samples.iter().filter(|s| s.lateness.is_none()).count();
        let sent = samples.iter().filter(|s| s.lateness.is_some()).count();
        assert_eq!((sent, refused), (5, expected - 5));
        assert!(samples.iter().all(|s| !s.ok));
        // The sent ones timed out at 600ms, measured from their due time,
        // long before the server would have answered.
        for s in samples.iter().filter(|s| s.lateness.is_some()) {
            assert!(
                s.latency >= ms(600) && s.latency < ms(2500),
                "{:?}",
                s.latency
            );
        }
        let st = stats::summarize(&samples, ms(10));
        assert_eq!(st.outages.len(), 1);
        assert_eq!(st.outages[0].duration(), ms(10) * expected as u32);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_and_extend_bound_the_schedule() {
        let addr = server(Instant::now(), None).await;
        let req = Arc::new(ProbeRequest::get(&format!("http://{addr}/")).unwrap());
        let rec = Recorder::default();
        let run = start(
            client(),
            req.clone(),
            Schedule::every(ms(10)),
            rec.clone(),
            Some(Instant::now() + ms(1000)),
        );
        run.extend_until(run.t0() + ms(2000));
        // Mid-run (late wake-ups still land well inside the 2s).
        tokio::time::sleep(ms(700)).await;
        // The live view sees the trailing window of successes only.
        let (rate, n) = rec.window_rate(ms(200)).unwrap();
        assert_eq!(rate, 1.0);
        // About 20: at most 21 sends are due in 200ms; some may still be in flight.
        assert!((5..=21).contains(&n), "{n}");
        assert!(
            rec.window_rate(ms(10_000)).is_none(),
            "not running long enough"
        );
        // The extended end, not the first one, bounded the schedule.
        assert_eq!(run.finish().await.len(), 200);

        let run = start(
            client(),
            req,
            Schedule::every(ms(10)),
            Recorder::default(),
            None,
        );
        tokio::time::sleep(ms(95)).await;
        // stop() reads the clock itself: bracket it.
        let before = run.t0().elapsed();
        run.stop();
        let after = run.t0().elapsed();
        // Every send due before the stop, and none after.
        let (lo, hi) = (sends_before(before, ms(10)), sends_before(after, ms(10)));
        let n = run.finish().await.len();
        assert!((lo..=hi).contains(&n), "{n} sends, {lo}..={hi} due");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_are_non_2xx_and_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let addr = server(Instant::now(), None).await;
        for (url, ok) in [
            (format!("http://{addr}/"), true),
            (format!("http://{addr}/missing"), false),
            (format!("http://{closed}/"), false),
        ] {
            let req = ProbeRequest::get(&url).unwrap();
            assert_eq!(req.send(&client()).await, ok, "{url}");
        }
    }
}
