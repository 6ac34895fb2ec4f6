//! The HTML report: one self-contained page (inline CSS and SVG, no script,
//! nothing fetched) from a run's report, with a timeline per scenario drawn
//! with plotters' SVG backend (text is SVG `<text>`, so no fonts are read),
//! and a trend page over several saved reports. Reads the model only.

use std::fmt::Write as _;
use std::time::Duration;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::doc::{escape, page_start, slug};
use super::fixes::{Fixes, VerifiedFix};
use heatcheck_engine::model::{
    CaseKind, CaseReport, CaseStatus, NoteKind, Outcome, ProbeStats, RunReport, SuiteReport,
};
use heatcheck_engine::probe::stats::fmt_rate;
use heatcheck_gateway::units::fmt_latency;

/// Fill of a fault span, in every panel (tests look for it).
pub(crate) const FAULT_FILL: RGBColor = RGBColor(0xF4, 0xA2, 0x61);
/// Fill of an outage window.
pub(crate) const OUTAGE_FILL: RGBColor = RGBColor(0xD6, 0x28, 0x28);
const OK_GREEN: RGBColor = RGBColor(0x2D, 0x8A, 0x4E);
const FAIL_RED: RGBColor = RGBColor(0xC6, 0x28, 0x28);
const SKIP_GREY: RGBColor = RGBColor(0xAA, 0xAA, 0xAA);
const P50_BLUE: RGBColor = RGBColor(0x1F, 0x6F, 0xB4);
const P99_PURPLE: RGBColor = RGBColor(0x8E, 0x44, 0xAD);
const NOTE_TEAL: RGBColor = RGBColor(0x0E, 0x7C, 0x86);
const WIDTH: u32 = 900;

/// The report of one run as an HTML page.
pub fn run_html(report: &RunReport) -> String {
    run_html_with_fixes(report, &Fixes::new())
}

/// The report of one run, with the verified fix (of `heatcheck remediate`)
/// beside each scenario it fixes.
pub fn run_html_with_fixes(report: &RunReport, fixes: &Fixes) -> String {
    let title = format!("heatcheck run {}", report.run_id);
    let mut s = page_start(&title, REPORT_CSS);
    let totals = report.totals();
    let verdict = if totals.failed + totals.errored == 0 {
        "passed"
    } else {
        "failed"
    };
    let _ = writeln!(
        s,
        "<header><h1>{}</h1><p class=\"verdict {verdict}\">{verdict}: {} &middot; exit code {} &middot; started {} &middot; {}</p></header>",
        escape(&title),
        escape(&totals.to_string()),
        report.exit_code,
        report.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        fmt_secs(report.duration)
    );
    environment(&mut s, report);
    summary_table(&mut s, report);
    for suite in &report.suites {
        suite_section(&mut s, suite, fixes);
    }
    restore_section(&mut s, report);
    s.push_str("</body>\n</html>\n");
    s
}

/// A unified diff with its added and removed lines marked for colour.
fn diff_html(d: &str) -> String {
    d.lines()
        .map(|l| {
            let class = match l.as_bytes().first() {
                Some(b'+') if !l.starts_with("+++") => "add",
                Some(b'-') if !l.starts_with("---") => "del",
                _ => return format!("{}\n", escape(l)),
            };
            format!("<span class=\"{class}\">{}</span>\n", escape(l))
        })
        .collect()
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn status_class(c: &CaseStatus) -> &'static str {
    c.label()
}

fn environment(s: &mut String, r: &RunReport) {
    s.push_str("<section class=\"env\"><h2>Environment</h2>\n<table>\n");
    let _ = writeln!(
        s,
        "<tr><th>run id</th><td><code>{}</code></td></tr>",
        escape(&r.run_id)
    );
    if let Some(env) = &r.environment {
        let _ = writeln!(
            s,
            "<tr><th>heatcheck</th><td>{}</td></tr>\n<tr><th>cluster</th><td><code>{}</code>{}</td></tr>",
            escape(&env.heatcheck_version),
            escape(&env.cluster_server),
            env.context
                .as_deref()
                .map(|c| format!(" (context <code>{}</code>)", escape(c)))
                .unwrap_or_default()
        );
        for src in &env.suites {
            let _ = writeln!(
                s,
                "<tr><th>suite {}</th><td><code>{}</code> sha256 <code>{}</code>{}</td></tr>",
                escape(&src.name),
                escape(&src.file),
                escape(&src.sha256),
                src.lock_sha256
                    .as_deref()
                    .map(|h| format!(", lockfile sha256 <code>{}</code>", escape(h)))
                    .unwrap_or_default()
            );
        }
    }
    s.push_str("</table></section>\n");
}

fn summary_table(s: &mut String, r: &RunReport) {
    s.push_str("<section class=\"summary\"><h2>Summary</h2>\n<table>\n<thead><tr><th>suite</th><th>case</th><th>status</th><th>time</th><th>message</th></tr></thead>\n<tbody>\n");
    for suite in &r.suites {
        for c in &suite.cases {
            let name = if c.kind == CaseKind::Scenario {
                format!(
                    "<a href=\"#{}\">{}</a>",
                    case_id(suite, c),
                    escape(&c.display_name())
                )
            } else {
                escape(&c.display_name())
            };
            let _ = writeln!(
                s,
                "<tr class=\"case-row {}\"><td>{}</td><td>{name}</td><td><span class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td></tr>",
                status_class(&c.status),
                escape(&suite.name),
                status_class(&c.status),
                c.status.label(),
                fmt_secs(c.duration),
                escape(c.status.message().unwrap_or(""))
            );
        }
        if let Some(e) = suite.unreported_error() {
            let _ = writeln!(
                s,
                "<tr class=\"case-row errored\"><td>{}</td><td>suite</td><td><span class=\"badge errored\">errored</span></td><td></td><td>{}</td></tr>",
                escape(&suite.name),
                escape(e)
            );
        }
    }
    s.push_str("</tbody></table></section>\n");
}

fn case_id(suite: &SuiteReport, c: &CaseReport) -> String {
    format!("{}--{}", slug(&suite.name), slug(&c.name))
}

fn suite_section(s: &mut String, suite: &SuiteReport, fixes: &Fixes) {
    let _ = writeln!(
        s,
        "<section class=\"suite\"><h2>Suite {} <small>{}</small></h2>",
        escape(&suite.name),
        escape(&suite.file)
    );
    for c in suite.cases.iter().filter(|c| c.kind == CaseKind::Scenario) {
        scenario_section(
            s,
            suite,
            c,
            fixes.get(&(suite.name.clone(), c.name.clone())),
        );
    }
    s.push_str("</section>\n");
}

fn scenario_section(
    s: &mut String,
    suite: &SuiteReport,
    c: &CaseReport,
    fix: Option<&VerifiedFix>,
) {
    let _ = writeln!(
        s,
        "<article class=\"scenario {}\" id=\"{}\">\n<h3>{} <span class=\"badge {}\">{}</span>{}</h3>",
        status_class(&c.status),
        case_id(suite, c),
        escape(&c.name),
        status_class(&c.status),
        c.status.label(),
        c.origin
            .as_deref()
            .filter(|o| *o == "lock")
            .map(|_| " <span class=\"badge origin\">AI, locked</span>")
            .unwrap_or("")
    );
    if let Some(d) = &c.description {
        let _ = writeln!(s, "<p>{}</p>", escape(d.trim()));
    }
    if let CaseStatus::Skipped { reason } = &c.status {
        let _ = writeln!(
            s,
            "<p class=\"muted\">skipped: {}</p></article>",
            escape(reason)
        );
        return;
    }
    let _ = writeln!(
        s,
        "<figure class=\"timeline\">{}<figcaption>{}</figcaption></figure>",
        timeline_svg(c),
        legend()
    );
    s.push_str("<div class=\"side\">\n");
    if let CaseStatus::Failed { message, detail } | CaseStatus::Errored { message, detail } =
        &c.status
    {
        let _ = writeln!(
            s,
            "<div class=\"failure\"><h4>What failed</h4><p>{}</p><pre>{}</pre></div>",
            escape(message),
            escape(&strip_ansi(detail))
        );
    }
    // Steps, faults and checks with their times: the timeline's text twin.
    s.push_str("<h4>Steps</h4>\n<table><thead><tr><th>#</th><th>step</th><th>at</th><th>took</th><th>outcome</th></tr></thead><tbody>\n");
    for st in &c.steps {
        let _ = writeln!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}{}</td><td>{:.2}s</td><td>{}</td><td>{}</td></tr>",
            outcome_label(st.outcome),
            st.index + 1,
            escape(&st.name),
            st.message
                .as_deref()
                .map(|m| format!("<br><small>{}</small>", escape(m)))
                .unwrap_or_default(),
            st.started_ms as f64 / 1000.0,
            fmt_latency(st.duration),
            outcome_label(st.outcome)
        );
    }
    s.push_str("</tbody></table>\n");
    if !c.faults.is_empty() {
        s.push_str("<h4>Faults</h4>\n<ul>\n");
        for f in &c.faults {
            let _ = writeln!(
                s,
                "<li class=\"fault-span\">{}: injected at {:.2}s, {}</li>",
                escape(&f.name),
                f.injected_ms as f64 / 1000.0,
                f.recovered_ms
                    .map(|r| format!("recovered at {:.2}s", r as f64 / 1000.0))
                    .unwrap_or_else(|| "not recovered when the report was written".into())
            );
        }
        s.push_str("</ul>\n");
    }
    if !c.notes.is_empty() {
        s.push_str("<h4>Game-day log</h4>\n<ul>\n");
        for n in &c.notes {
            let _ = writeln!(
                s,
                "<li class=\"note {}\">{:.2}s {}: {}</li>",
                note_label(n.kind),
                n.at_ms as f64 / 1000.0,
                note_label(n.kind),
                escape(&n.text)
            );
        }
        s.push_str("</ul>\n");
    }
    s.push_str("<h4>Checks</h4>\n<table><thead><tr><th>check</th><th>at</th><th>result</th></tr></thead><tbody>\n");
    for a in &c.assertions {
        let _ = writeln!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            if a.passed { "passed" } else { "failed" },
            escape(&a.name),
            a.at_ms
                .map(|m| format!("{:.2}s", m as f64 / 1000.0))
                .unwrap_or_default(),
            escape(&a.message),
            a.detail
                .as_deref()
                .filter(|_| !a.passed)
                .map(|d| format!("<pre>{}</pre>", escape(&strip_ansi(d))))
                .unwrap_or_default()
        );
    }
    s.push_str("</tbody></table>\n");
    for p in &c.probes {
        let _ = writeln!(
            s,
            "<p class=\"probe\"><strong>probe {}</strong> ({}, every {}): {} sent, {} ok, p50 {} &middot; p99 {} &middot; max {}, {}</p>",
            escape(&p.name),
            escape(&p.mode),
            fmt_latency(p.every),
            p.count,
            fmt_rate(p.success_rate),
            fmt_latency(p.p50),
            fmt_latency(p.p99),
            fmt_latency(p.max),
            match p.outages.len() {
                0 => "no outage".to_string(),
                n => format!("{n} outage(s), longest {}", fmt_latency(p.longest_outage())),
            }
        );
    }
    if !c.metrics.is_empty() {
        let _ = writeln!(s, "<h4>Metrics to watch</h4>\n<ul>{}</ul>", li(&c.metrics));
    }
    if !c.remediation.is_empty() {
        let _ = writeln!(s, "<h4>Remediation</h4>\n<ul>{}</ul>", li(&c.remediation));
    }
    if let Some(f) = fix {
        let _ = writeln!(
            s,
            "<div class=\"fix\"><h4>Verified fix</h4><p>{}</p>",
            escape(&f.summary())
        );
        if !f.diff.is_empty() {
            let _ = writeln!(s, "<pre class=\"diff\">{}</pre>", diff_html(&f.diff));
        }
        for y in &f.server_side_apply {
            let _ = writeln!(s, "<pre>{}</pre>", escape(y));
        }
        s.push_str("</div>\n");
    }
    s.push_str("</div>\n</article>\n");
}

fn note_label(k: NoteKind) -> &'static str {
    match k {
        NoteKind::Note => "note",
        NoteKind::Skip => "skip",
        NoteKind::Pause => "pause",
        NoteKind::Abort => "abort",
    }
}

fn li(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("<li>{}</li>", escape(i)))
        .collect()
}

fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Failed => "failed",
        Outcome::Ignored => "ignored",
        Outcome::Skipped => "skipped",
    }
}

fn strip_ansi(s: &str) -> String {
    console::strip_ansi_codes(s)
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

fn legend() -> String {
    let sw = |color: &RGBColor, label: &str| {
        format!(
            "<span class=\"key\"><i style=\"background:#{:02X}{:02X}{:02X}\"></i>{label}</span>",
            color.0, color.1, color.2
        )
    };
    [
        sw(&OK_GREEN, "step ok / check passed"),
        sw(&FAIL_RED, "failed"),
        sw(&FAULT_FILL, "fault in place"),
        sw(&OUTAGE_FILL, "outage"),
        sw(&P50_BLUE, "p50"),
        sw(&P99_PURPLE, "p99"),
        sw(&NOTE_TEAL, "game-day note / skip / pause"),
    ]
    .join(" ")
}

fn restore_section(s: &mut String, r: &RunReport) {
    s.push_str("<section class=\"restore\"><h2>Restore</h2>\n");
    if r.restore.is_clean() {
        let _ = writeln!(
            s,
            "<p>The cluster was put back: {} object(s) restored.</p>",
            r.restore.restored.len()
        );
    } else {
        let _ = writeln!(
            s,
            "<p class=\"failed\">NOT clean: left behind {}; errors {}. Run <code>heatcheck recover {}</code>.</p>",
            escape(&r.restore.left_behind.join(", ")),
            escape(&r.restore.errors.join("; ")),
            escape(&r.run_id)
        );
    }
    s.push_str("</section>\n");
}

/// The case's end on the time axis: its duration, or the latest event.
fn case_end_secs(c: &CaseReport) -> f64 {
    let mut end = c.duration.as_secs_f64();
    for st in &c.steps {
        end = end.max((st.started_ms as f64 / 1000.0) + st.duration.as_secs_f64());
    }
    for f in &c.faults {
        end = end.max(f.recovered_ms.unwrap_or(f.injected_ms) as f64 / 1000.0);
    }
    for a in &c.assertions {
        end = end.max(a.at_ms.unwrap_or(0) as f64 / 1000.0);
    }
    for n in &c.notes {
        end = end.max(n.at_ms as f64 / 1000.0);
    }
    for p in &c.probes {
        for b in &p.buckets {
            end = end.max(b.start_ms as f64 / 1000.0 + 1.0);
        }
    }
    end.max(0.5)
}

/// One SVG: a lane panel (steps, faults, checks) over panels per probe
/// (latency p50/p99 with failed requests, success rate), on one time axis.
pub(crate) fn timeline_svg(c: &CaseReport) -> String {
    let lanes_h = 150u32;
    let probe_h = 170u32;
    let rate_h = 120u32;
    let height = lanes_h + c.probes.len() as u32 * (probe_h + rate_h);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let end = case_end_secs(c);
        let (lanes, mut rest) = root.split_vertically(lanes_h);
        let _ = draw_lanes(&lanes, c, end);
        for p in &c.probes {
            let (lat, after) = rest.split_vertically(probe_h);
            let (rate, after) = after.split_vertically(rate_h);
            let _ = draw_latency(&lat, c, p, end);
            let _ = draw_rate(&rate, c, p, end);
            rest = after;
        }
        let _ = root.present();
    }
    // plotters writes width/height; a viewBox lets the page scale it.
    svg.replacen(
        "<svg ",
        &format!("<svg class=\"timeline-svg\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"timeline of {}\" ", escape(&c.name)),
        1,
    )
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn shade_faults<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    c: &CaseReport,
    end: f64,
    y: (f64, f64),
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart.draw_series(c.faults.iter().map(|f| {
        let x0 = f.injected_ms as f64 / 1000.0;
        let x1 = f.recovered_ms.map(|r| r as f64 / 1000.0).unwrap_or(end);
        Rectangle::new([(x0, y.0), (x1, y.1)], FAULT_FILL.mix(0.35).filled())
    }))?;
    Ok(())
}

fn draw_lanes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &CaseReport,
    end: f64,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    const NAMES: [&str; 3] = ["checks", "faults", "steps"];
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end, -0.5f64..2.5f64)?;
    // Lanes are centred on 0, 1, 2 so the axis labels fall on them.
    chart
        .configure_mesh()
        .disable_y_mesh()
        .label_style(("sans-serif", 12))
        .y_labels(4)
        .y_label_formatter(&|v| {
            let i = v.round();
            if (0.0..3.0).contains(&i) && (*v - i).abs() < 0.01 {
                NAMES[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|v| format!("{v:.1}s"))
        .x_labels(10)
        .draw()?;
    shade_faults(&mut chart, c, end, (-0.5, 2.5))?;
    // Faults lane: a solid band for each span.
    chart.draw_series(c.faults.iter().map(|f| {
        let x0 = f.injected_ms as f64 / 1000.0;
        let x1 = f.recovered_ms.map(|r| r as f64 / 1000.0).unwrap_or(end);
        Rectangle::new([(x0, 0.7), (x1, 1.3)], FAULT_FILL.filled())
    }))?;
    // Steps lane: one bar per step, at least a sliver wide so it shows.
    let min_w = end / 300.0;
    chart.draw_series(c.steps.iter().map(|st| {
        let x0 = st.started_ms as f64 / 1000.0;
        let x1 = x0 + st.duration.as_secs_f64().max(min_w);
        let color = match st.outcome {
            Outcome::Ok => OK_GREEN,
            Outcome::Failed => FAIL_RED,
            Outcome::Ignored => RGBColor(0xE0, 0x9F, 0x3E),
            Outcome::Skipped => SKIP_GREY,
        };
        Rectangle::new([(x0, 1.7), (x1, 2.3)], color.filled())
    }))?;
    chart.draw_series(c.steps.iter().map(|st| {
        Text::new(
            format!("{}", st.index + 1),
            (st.started_ms as f64 / 1000.0, 2.45),
            ("sans-serif", 11).into_font().color(&BLACK),
        )
    }))?;
    // Game-day notes, skips and pauses: a triangle over the steps lane.
    chart.draw_series(
        c.notes
            .iter()
            .map(|n| TriangleMarker::new((n.at_ms as f64 / 1000.0, 1.55), 6, NOTE_TEAL.filled())),
    )?;
    // Checks lane: a dot per passed check, a cross per failed one.
    chart.draw_series(
        c.assertions
            .iter()
            .filter(|a| a.passed)
            .filter_map(|a| a.at_ms)
            .map(|m| Circle::new((m as f64 / 1000.0, 0.0), 5, OK_GREEN.filled())),
    )?;
    chart.draw_series(
        c.assertions
            .iter()
            .filter(|a| !a.passed)
            .filter_map(|a| a.at_ms)
            .map(|m| Cross::new((m as f64 / 1000.0, 0.0), 6, FAIL_RED.stroke_width(3))),
    )?;
    Ok(())
}

fn draw_latency<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &CaseReport,
    p: &ProbeStats,
    end: f64,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let top = p
        .buckets
        .iter()
        .map(|b| ms(b.p99))
        .chain(p.failed_samples.iter().map(|f| ms(f.latency)))
        .fold(1.0f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .caption(
            format!("probe {}: latency per second (ms)", p.name),
            ("sans-serif", 13),
        )
        .x_label_area_size(22)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end, 0f64..top)?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 12))
        .x_label_formatter(&|v| format!("{v:.1}s"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_labels(10)
        .y_labels(5)
        .draw()?;
    shade_faults(&mut chart, c, end, (0.0, top))?;
    chart.draw_series(p.outages.iter().map(|o| {
        Rectangle::new(
            [
                (o.start_ms as f64 / 1000.0, 0.0),
                (o.end_ms as f64 / 1000.0, top),
            ],
            OUTAGE_FILL.mix(0.25).filled(),
        )
    }))?;
    let mid = |start_ms: u64| start_ms as f64 / 1000.0 + 0.5;
    chart.draw_series(LineSeries::new(
        p.buckets.iter().map(|b| (mid(b.start_ms), ms(b.p50))),
        P50_BLUE.stroke_width(2),
    ))?;
    chart.draw_series(LineSeries::new(
        p.buckets.iter().map(|b| (mid(b.start_ms), ms(b.p99))),
        P99_PURPLE.stroke_width(2),
    ))?;
    chart.draw_series(p.buckets.iter().flat_map(|b| {
        [
            Circle::new((mid(b.start_ms), ms(b.p50)), 3, P50_BLUE.filled()),
            Circle::new((mid(b.start_ms), ms(b.p99)), 3, P99_PURPLE.filled()),
        ]
    }))?;
    chart.draw_series(p.failed_samples.iter().map(|f| {
        Cross::new(
            (f.at_ms as f64 / 1000.0, ms(f.latency)),
            3,
            FAIL_RED.stroke_width(1),
        )
    }))?;
    Ok(())
}

fn draw_rate<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &CaseReport,
    p: &ProbeStats,
    end: f64,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .caption(
            format!("probe {}: success rate (%)", p.name),
            ("sans-serif", 13),
        )
        .x_label_area_size(22)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end, 0f64..105f64)?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 12))
        .x_label_formatter(&|v| format!("{v:.1}s"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_labels(10)
        .y_labels(3)
        .draw()?;
    shade_faults(&mut chart, c, end, (0.0, 105.0))?;
    chart.draw_series(p.outages.iter().map(|o| {
        Rectangle::new(
            [
                (o.start_ms as f64 / 1000.0, 0.0),
                (o.end_ms as f64 / 1000.0, 105.0),
            ],
            OUTAGE_FILL.mix(0.25).filled(),
        )
    }))?;
    chart.draw_series(LineSeries::new(
        p.buckets.iter().map(|b| {
            let rate = if b.count == 0 {
                100.0
            } else {
                b.ok as f64 * 100.0 / b.count as f64
            };
            (b.start_ms as f64 / 1000.0 + 0.5, rate)
        }),
        OK_GREEN.stroke_width(2),
    ))?;
    Ok(())
}

/// Trend over several runs (e.g. nightly reports, oldest first): per
/// scenario, its status in each run, and each probe's p99 and success rate.
pub fn trend_html(reports: &[RunReport]) -> String {
    let mut runs: Vec<&RunReport> = reports.iter().collect();
    runs.sort_by_key(|r| r.started_at);
    let title = format!("heatcheck trend over {} runs", runs.len());
    let mut s = page_start(&title, REPORT_CSS);
    let _ = writeln!(s, "<header><h1>{}</h1></header>", escape(&title));
    // Scenario keys in first-seen order.
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in &runs {
        for suite in &r.suites {
            for c in suite.cases.iter().filter(|c| c.kind == CaseKind::Scenario) {
                let k = (suite.name.clone(), c.name.clone());
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
    }
    let find = |r: &RunReport, k: &(String, String)| -> Option<CaseReport> {
        r.suites
            .iter()
            .filter(|s| s.name == k.0)
            .flat_map(|s| &s.cases)
            .find(|c| c.kind == CaseKind::Scenario && c.name == k.1)
            .cloned()
    };
    s.push_str("<section class=\"summary\"><h2>Pass / fail per run</h2>\n<table class=\"trend\">\n<thead><tr><th>suite</th><th>scenario</th>");
    for r in &runs {
        let _ = write!(
            s,
            "<th title=\"{}\">{}</th>",
            escape(&r.run_id),
            r.started_at.format("%m-%d %H:%M")
        );
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for k in &keys {
        let _ = write!(
            s,
            "<tr class=\"trend-row\"><td>{}</td><td>{}</td>",
            escape(&k.0),
            escape(&k.1)
        );
        for r in &runs {
            match find(r, k) {
                Some(c) => {
                    let _ = write!(
                        s,
                        "<td class=\"cell {}\" title=\"{}\">{}</td>",
                        c.status.label(),
                        escape(c.status.message().unwrap_or("")),
                        c.status.label()
                    );
                }
                None => s.push_str("<td class=\"cell absent\">-</td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table></section>\n");
    s.push_str("<section><h2>Probes per run</h2>\n");
    let mut any = false;
    for k in &keys {
        let mut names: Vec<String> = Vec::new();
        for r in &runs {
            if let Some(c) = find(r, k) {
                for p in &c.probes {
                    if !names.contains(&p.name) {
                        names.push(p.name.clone());
                    }
                }
            }
        }
        for name in names {
            any = true;
            let points: Vec<(usize, Option<(f64, f64)>)> = runs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let v = find(r, k).and_then(|c| {
                        c.probes
                            .iter()
                            .find(|p| p.name == name)
                            .map(|p| (p.p99.as_secs_f64() * 1000.0, p.success_rate * 100.0))
                    });
                    (i, v)
                })
                .collect();
            let _ = writeln!(
                s,
                "<article class=\"scenario\"><h3>{} / {}: probe {}</h3><figure class=\"timeline\">{}</figure></article>",
                escape(&k.0),
                escape(&k.1),
                escape(&name),
                trend_svg(&points, runs.len())
            );
        }
    }
    if !any {
        s.push_str("<p class=\"muted\">No scenario ran a probe in these reports.</p>\n");
    }
    s.push_str("</section>\n</body>\n</html>\n");
    s
}

fn trend_svg(points: &[(usize, Option<(f64, f64)>)], runs: usize) -> String {
    let (w, h) = (WIDTH, 320u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let (top, bottom) = root.split_vertically(h / 2);
        let xmax = runs.max(2) as f64 - 0.5;
        let top_ms = points
            .iter()
            .filter_map(|(_, v)| v.map(|v| v.0))
            .fold(1.0f64, f64::max)
            * 1.15;
        let label = |v: &f64| format!("run {}", v.round() as i64 + 1);
        let draw = |area: &DrawingArea<SVGBackend, Shift>,
                    caption: &str,
                    ymax: f64,
                    pick: &dyn Fn((f64, f64)) -> f64,
                    color: RGBColor|
         -> DrawResult {
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .caption(caption, ("sans-serif", 13))
                .x_label_area_size(22)
                .y_label_area_size(70)
                .build_cartesian_2d(-0.5f64..xmax, 0f64..ymax)?;
            chart
                .configure_mesh()
                .label_style(("sans-serif", 12))
                .x_labels(runs.clamp(2, 12))
                .x_label_formatter(&label)
                .y_labels(4)
                .draw()?;
            let pts: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|(i, v)| v.map(|v| (*i as f64, pick(v))))
                .collect();
            chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
            Ok(())
        };
        let _ = draw(&top, "p99 latency (ms)", top_ms, &|v| v.0, P99_PURPLE);
        let _ = draw(&bottom, "success rate (%)", 105.0, &|v| v.1, OK_GREEN);
        let _ = root.present();
    }
    svg.replacen(
        "<svg ",
        &format!("<svg class=\"timeline-svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" "),
        1,
    )
}

const REPORT_CSS: &str = r#"
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg2: #f6f8fa; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  max-width: 78rem; margin: 1.5rem auto; padding: 0 1.5rem; font-size: 14px; line-height: 1.4; }
h1 { margin-bottom: .2rem; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
h2 small { color: var(--muted); font-weight: normal; font-size: .7em; }
h4 { margin: .8rem 0 .3rem; }
.diff .add { color: #1a7f37; } .diff .del { color: #cf222e; }
.fix { border-left: 3px solid #1a7f37; padding-left: .6rem; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
pre { background: var(--bg2); border: 1px solid var(--line); padding: .4rem .6rem; white-space: pre-wrap;
  word-break: break-word; max-height: 24rem; overflow: auto; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0; }
th, td { border: 1px solid var(--line); padding: .2rem .45rem; text-align: left; vertical-align: top; }
th { background: var(--bg2); }
.verdict { font-weight: 600; }
.verdict.passed { color: #1a7f37; } .verdict.failed { color: #cf222e; }
.badge { display: inline-block; border-radius: 3px; padding: 0 .4em; font-size: .8em; font-weight: 600;
  color: #fff; background: #6e7781; vertical-align: middle; }
.badge.passed { background: #1a7f37; } .badge.failed { background: #cf222e; }
.badge.errored { background: #9a6700; } .badge.skipped { background: #8c959f; }
.badge.origin { background: #6639ba; }
.cell.passed { background: #dafbe1; } .cell.failed { background: #ffebe9; }
.cell.errored { background: #fff8c5; } .cell.skipped, .cell.absent { color: var(--muted); }
tr.failed td, tr.errored td { background: #fff5f5; }
article.scenario { border: 1px solid var(--line); border-radius: 6px; padding: .3rem 1rem 1rem;
  margin: 1rem 0; break-inside: avoid-page; }
figure.timeline { margin: .5rem 0; }
.timeline-svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: var(--muted); }
.key { margin-right: 1rem; white-space: nowrap; }
.key i { display: inline-block; width: .9em; height: .9em; margin-right: .3em; vertical-align: -1px; border-radius: 2px; }
.failure { border-left: 4px solid #cf222e; padding-left: .6rem; }
.muted { color: var(--muted); }
.failed { color: #cf222e; }
@page { size: A4; margin: 12mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 9.5pt; }
  a { color: inherit; text-decoration: none; }
  pre { max-height: none; overflow: visible; }
  h2, h3, h4 { break-after: avoid; }
  tr, figure { break-inside: avoid; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_engine::fixture::sample_run;

    #[test]
    fn run_page_has_one_timeline_per_scenario_and_the_fault_span() {
        let report = sample_run();
        let html = run_html(&report);
        let dom = tl::parse(&html, tl::ParserOptions::default()).unwrap();
        let ran = report
            .suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| {
                c.kind == CaseKind::Scenario && !matches!(c.status, CaseStatus::Skipped { .. })
            })
            .count();
        assert_eq!(dom.query_selector("figure.timeline").unwrap().count(), ran);
        assert_eq!(dom.query_selector("svg").unwrap().count(), ran);
        assert!(html.contains("fill=\"#F4A261\""), "fault span drawn");
        assert_eq!(dom.query_selector("li.fault-span").unwrap().count(), 1);
        assert_eq!(dom.query_selector("li.note").unwrap().count(), 1);
        assert!(html.contains("dashboards show 503s from v2 &lt;b&gt;only&lt;/b&gt;"));
        assert_eq!(dom.query_selector("script").unwrap().count(), 0);
        // Hostile detail text is escaped, not interpreted.
        assert!(!html.contains("<html>\"Service"));
        assert!(!html.contains('\x1b'));
    }

    #[test]
    fn trend_page_lists_each_scenario_per_run() {
        let a = sample_run();
        let mut b = sample_run();
        b.started_at += chrono::Duration::days(1);
        b.suites[0].cases[2].status = CaseStatus::Passed;
        let html = trend_html(&[b, a]);
        let dom = tl::parse(&html, tl::ParserOptions::default()).unwrap();
        let parser = dom.parser();
        let cells: Vec<String> = dom
            .query_selector("td.cell")
            .unwrap()
            .filter_map(|h| h.get(parser))
            .map(|n| n.inner_text(parser).into_owned())
            .collect();
        // Oldest first: failed, then passed.
        assert_eq!(cells[0], "failed");
        assert_eq!(cells[1], "passed");
        assert!(html.contains("probe shop availability"));
        assert_eq!(dom.query_selector("svg").unwrap().count(), 1);
    }
}
