//! `heatcheck explore`'s findings as metrics (`--metrics-file`: the
//! resilience score a nightly explore trends) and as an HTML page
//! (`--report-html`). Reads explore's report only.

use std::fmt::Write as _;

use heatcheck_explore::{FindingsReport, WeaknessClass};

use crate::doc::{escape, page_start};
use crate::metrics::{encode, Series};

/// `heatcheck_resilience_score` and the counts behind it, labelled by suite
/// and namespace; a class explore could judge is 1 survived or 0 failed.
pub fn explore_metrics_text(r: &FindingsReport) -> String {
    let mut s = Series::new();
    let base = || {
        vec![
            ("suite", r.suite.clone()),
            ("namespace", r.namespace.clone()),
        ]
    };
    s.set(
        "heatcheck_resilience_score",
        "Share (0-100) of the catalog's weakness classes that apply to the namespace that it survived",
        base(),
        r.resilience.score.into(),
    );
    for (class, survived) in r
        .resilience
        .survived
        .iter()
        .map(|c| (c, 1.0))
        .chain(r.resilience.failed.iter().map(|c| (c, 0.0)))
    {
        let mut l = base();
        l.push(("class", class.as_str().to_string()));
        s.set(
            "heatcheck_resilience_class_survived",
            "1 when the namespace survived every candidate of the class, 0 when one found a weakness",
            l,
            survived,
        );
    }
    for class in WeaknessClass::ALL.into_iter().chain([WeaknessClass::Other]) {
        let n = r.findings.iter().filter(|f| f.class == class).count();
        if n == 0
            && !r.resilience.failed.contains(&class)
            && !r.resilience.survived.contains(&class)
        {
            continue;
        }
        let mut l = base();
        l.push(("class", class.as_str().to_string()));
        s.set(
            "heatcheck_explore_findings",
            "Findings of the last explore, by weakness class",
            l,
            n as f64,
        );
    }
    for (what, n) in [
        ("run", r.candidates),
        ("refused", r.refused),
        ("skipped", r.skipped),
    ] {
        let mut l = base();
        l.push(("result", what.to_string()));
        s.set(
            "heatcheck_explore_candidates",
            "Candidates of the last explore: run on twins, refused before running, left by the budget",
            l,
            n as f64,
        );
    }
    s.set(
        "heatcheck_explore_duration_seconds",
        "Wall time of the last explore",
        base(),
        r.duration_seconds,
    );
    encode(&s)
}

/// One page: the score, then one section per finding (what the terminal
/// shows), with each finding's scenario as YAML.
pub fn explore_html(r: &FindingsReport) -> String {
    let title = format!("heatcheck explore {}", r.suite);
    let mut s = page_start(&title, CSS);
    let verdict = if r.findings.is_empty() {
        "passed"
    } else {
        "failed"
    };
    let _ = writeln!(
        s,
        "<header><h1>{}</h1><p class=\"verdict {verdict}\">{} finding(s) in namespace {} &middot; {} candidate(s) run on twins, {} refused, {} not tried &middot; {:.0}s</p></header>",
        escape(&title),
        r.findings.len(),
        escape(&r.namespace),
        r.candidates,
        r.refused,
        r.skipped,
        r.duration_seconds
    );
    let names = |c: &[WeaknessClass]| {
        if c.is_empty() {
            "none".to_string()
        } else {
            c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        }
    };
    let _ = writeln!(
        s,
        "<section class=\"score\"><h2>Resilience score {}/100</h2><p>survived: {}</p><p>failed: {}</p></section>",
        r.resilience.score,
        escape(&names(&r.resilience.survived)),
        escape(&names(&r.resilience.failed))
    );
    if let Some(e) = &r.model_error {
        let _ = writeln!(
            s,
            "<p class=\"warn\">the model's rounds stopped: {}</p>",
            escape(e)
        );
    }
    for (i, f) in r.findings.iter().enumerate() {
        let _ = writeln!(
            s,
            "<section class=\"finding\"><h2>{}. {}</h2><p><b>{}</b> &middot; {} &middot; from the {}{}</p>",
            i + 1,
            escape(&f.title),
            f.class.as_str(),
            f.severity.as_str(),
            match f.origin {
                heatcheck_explore::Origin::Catalog => "catalog",
                heatcheck_explore::Origin::Ai => "model",
            },
            if f.flaky { " &middot; flaky" } else { "" }
        );
        let _ = writeln!(s, "<p>objects: {}</p>", escape(&f.objects.join(", ")));
        let list = |items: &[String]| -> String {
            items
                .iter()
                .map(|e| format!("<li>{}</li>", escape(e)))
                .collect()
        };
        let _ = writeln!(s, "<h3>Evidence</h3><ul>{}</ul>", list(&f.evidence));
        let yaml = serde_saphyr::to_string(&f.scenario).unwrap_or_default();
        let _ = writeln!(
            s,
            "<h3>Scenario (minimized)</h3><pre>{}</pre>",
            escape(&yaml)
        );
        let _ = writeln!(
            s,
            "<h3>What to change</h3><ul>{}</ul></section>",
            list(&f.remediation)
        );
    }
    s.push_str("</body>\n</html>\n");
    s
}

const CSS: &str = r#"
body { font: 15px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
.verdict.passed { color: #2d8a4e; } .verdict.failed { color: #c62828; }
section { border-top: 1px solid #ddd; margin-top: 1.5rem; }
pre { background: #f5f5f5; padding: .75rem; overflow-x: auto; }
.warn { color: #8a5a00; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> FindingsReport {
        serde_json::from_value(serde_json::json!({
            "suite": "shop", "namespace": "shop", "candidates": 9, "refused": 1, "skipped": 0,
            "durationSeconds": 42.0, "tokens": {"input": 0, "output": 0},
            "resilience": {"score": 66, "survived": ["capacity", "rollout"], "failed": ["single-pod"]},
            "findings": [{"id": "pod-kill-one/Deployment/shop/solo", "title": "kill one pod of solo <b>",
                "class": "single-pod", "severity": "outage", "objects": ["Deployment/shop/solo"],
                "scenario": {"name": "x", "steps": [{"fault": {"type": "podKill", "selector": "app=solo", "duration": "4s"}}]},
                "evidence": ["probe \"/solo\": 2.1s of outage"], "outageSeconds": 2.1,
                "remediation": ["run at least 2 replicas"], "flaky": false, "origin": "catalog"}]
        }))
        .unwrap()
    }

    #[test]
    fn the_score_and_its_classes_are_gauges_a_nightly_run_trends() {
        let text = explore_metrics_text(&report());
        for want in [
            "heatcheck_resilience_score{suite=\"shop\",namespace=\"shop\"} 66",
            "heatcheck_resilience_class_survived{suite=\"shop\",namespace=\"shop\",class=\"single-pod\"} 0",
            "heatcheck_resilience_class_survived{suite=\"shop\",namespace=\"shop\",class=\"rollout\"} 1",
            "heatcheck_explore_findings{suite=\"shop\",namespace=\"shop\",class=\"single-pod\"} 1",
            "heatcheck_explore_findings{suite=\"shop\",namespace=\"shop\",class=\"capacity\"} 0",
            "heatcheck_explore_candidates{suite=\"shop\",namespace=\"shop\",result=\"refused\"} 1",
            "# TYPE heatcheck_resilience_score gauge",
        ] {
            assert!(text.contains(want), "missing {want}:\n{text}");
        }
        // Classes that did not apply are not reported as survived.
        assert!(!text.contains("class=\"timeout-budget\""), "{text}");
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let html = explore_html(&report());
        assert!(html.contains("Resilience score 66/100"));
        assert!(html.contains("kill one pod of solo &lt;b&gt;"));
        assert!(html.contains("podKill"));
        assert!(!html.contains("<b>\"") && !html.contains("solo <b>"));
    }
}
