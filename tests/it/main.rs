//! The integration tests: one binary (the library links once), one module
//! per area. Each runs the real `heatcheck` binary against the sandbox, fake
//! LLM servers and real Prometheus on 127.0.0.1, port 0.

mod common;

mod ai_generate;
mod ai_prompt;
mod ai_providers;
mod ai_providers_enterprise;
mod ai_real_model;
mod api_outage;
mod ci_templates;
mod conformance;
mod deploy;
mod examples;
mod explore;
mod gameday;
mod guard;
mod html_report;
mod hygiene;
mod incluster;
mod jobs;
mod live_panel;
mod mcp;
mod notify;
mod partition;
mod permissions;
mod playbook;
mod probes;
mod prometheus;
mod recover;
mod remediate;
mod retries;
mod run_sandbox;
mod sandbox_api;
mod sandbox_kubectl;
mod sandbox_protobuf;
mod sandbox_rbac;
mod state_dir;
mod suite_errors;
mod twin_time;
