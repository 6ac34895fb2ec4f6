//! `--scenario NAME`: a scenario of the suite as a finding. Its weakness
//! class and catalog entry come from its tags (as `explore --write-suite`
//! writes them: `[explore, <entry>, <class>]`), the objects from what its
//! steps change; a scenario of a catalog entry is then judged as explore
//! judges that entry.

use serde_json::Value;

use heatcheck_explore::catalog::ENTRIES;
use heatcheck_explore::snapshot::Snapshot;
use heatcheck_explore::{Finding, Origin, Severity, WeaknessClass};
use heatcheck_format::Scenario;

pub fn finding_of_scenario(sc: &Scenario, snap: &Snapshot) -> Result<Finding, String> {
    let class = WeaknessClass::ALL
        .into_iter()
        .find(|c| sc.tags.iter().any(|t| t == c.as_str()))
        .ok_or_else(|| {
            format!(
                "scenario \"{}\" names no weakness class in its tags (one of: {}); the catalog proposes fixes per class",
                sc.name,
                WeaknessClass::ALL.map(|c| c.as_str()).join(", ")
            )
        })?;
    // What explore's model candidates are judged by too: one reading of steps.
    let objects = heatcheck_explore::catalog::changed_objects(sc, snap);
    if objects.is_empty() {
        return Err(format!(
            "scenario \"{}\": none of its steps names an object of the suite (a delete, scale, restart, or a fault on a Deployment's pods)",
            sc.name
        ));
    }
    let entry = ENTRIES
        .iter()
        .find(|e| e.1 == class && sc.tags.iter().any(|t| t == e.0))
        .map(|e| e.0);
    Ok(Finding {
        id: match entry {
            // The catalog's id: the entry is asked again of changed objects.
            Some(e) => format!("{e}/{}", objects.join("+")),
            None => format!("scenario/{}", sc.name),
        },
        title: sc.name.clone(),
        class,
        severity: Severity::SloBreach,
        objects,
        scenario: serde_json::to_value(sc).unwrap_or(Value::Null),
        evidence: Vec::new(),
        outage_seconds: 0.0,
        remediation: Vec::new(),
        flaky: false,
        origin: Origin::Catalog,
        probes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap() -> Snapshot {
        Snapshot {
            namespace: "ns".into(),
            objects: vec![
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "solo"},
                "spec": {"selector": {"matchLabels": {"app": "solo"}}}}),
            ],
        }
    }

    #[test]
    fn a_tagged_scenario_is_the_catalog_finding_it_replays() {
        let sc = heatcheck_format::parse_scenario_json(&json!({
            "name": "explore: kill one pod", "tags": ["explore", "pod-kill-one", "single-pod"],
            "steps": [{"fault": {"type": "podKill", "selector": "app=solo", "percent": 100, "duration": "4s"}}],
            "assertions": [{"http": {"url": "http://x", "expect": {"status": 200}}}],
        }))
        .unwrap();
        let f = finding_of_scenario(&sc, &snap()).unwrap();
        assert_eq!(f.id, "pod-kill-one/Deployment/ns/solo");
        assert_eq!(f.class, WeaknessClass::SinglePod);
        assert_eq!(f.objects, ["Deployment/ns/solo"]);
    }

    #[test]
    fn an_untagged_scenario_is_refused_with_the_classes() {
        let sc = heatcheck_format::parse_scenario_json(&json!({
            "name": "plain", "steps": [{"scale": {"name": "solo", "replicas": 0}}],
            "assertions": [{"http": {"url": "http://x", "expect": {"status": 200}}}],
        }))
        .unwrap();
        let e = finding_of_scenario(&sc, &snap()).unwrap_err();
        assert!(e.contains("route-precedence, cross-namespace-grant"), "{e}");
    }
}
