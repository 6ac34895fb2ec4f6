//! `heatcheck prompt` prints exactly what would be sent, and calls no LLM
//! (the suite points at a port where nothing listens).

use crate::common;

use common::{suite_with, Case, BASE};

#[test]
fn prompt_output_snapshot() {
    let ai = r#"  ai:
    provider: openai
    model: gpt-4o-mini
    baseUrl: http://127.0.0.1:9/v1
    system: You are a Kubernetes networking expert for {{suite.name}}.
    context: [{kind: HTTPRoute}, {kind: Service}]
    prompt: |
      Here are my HTTPRoutes and Services in {{namespace}}:
      {{yaml context}}
      Give me {{count}} chaos scenarios.
    count: 2
"#;
    let c = Case::suite(&suite_with("prompt-ns", ai)).file("base.yaml", BASE);
    let out = c.exec(&["prompt".into(), "suite.yaml".into(), "--sandbox".into()]);
    out.assert_code(0);
    // The response schema is checked in elsewhere; keep the snapshot to the prompt.
    let shown = out
        .stdout
        .split("\n=== response schema")
        .next()
        .unwrap()
        .to_string();
    assert!(out.stdout.contains("\"scenarios\""));
    insta::with_settings!({filters => vec![(r"[0-9a-f]{64}", "[sha256]")]}, {
        insta::assert_snapshot!(shown);
    });
}
