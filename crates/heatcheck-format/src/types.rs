//! The suite document: `apiVersion: heatcheck.dev/v1alpha1`, `kind: Suite`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::assertion::{Assertion, HttpRequestSpec};
use super::duration::Duration;
use super::step::{set_once, Step};

pub const API_VERSION: &str = "heatcheck.dev/v1alpha1";
pub(crate) const KIND: &str = "Suite";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Suite {
    /// Must be `heatcheck.dev/v1alpha1`.
    pub(crate) api_version: String,
    /// Must be `Suite`.
    pub(crate) kind: String,
    pub metadata: Metadata,
    pub spec: SuiteSpec,
    /// Where the suite was loaded from (not part of the document).
    #[serde(skip)]
    pub source: SourceInfo,
}

/// Where a suite was read from; `dir` is the base of relative manifest paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceInfo {
    pub path: PathBuf,
    pub dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuiteSpec {
    pub target: Target,
    /// Template variables, available as `{{name}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, Value>,
    /// Environment variables exposed to templates as `{{env.NAME}}` (allowlist).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default)]
    pub defaults: Defaults,
    /// Applied first, removed last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixtures: Vec<Step>,
    /// Must hold before and after each scenario.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steady_state: Vec<Assertion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_conditions: Vec<StopCondition>,
    /// Where `promql` assertions and stop conditions query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenarios: Vec<Scenario>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiConfig>,
}

impl SuiteSpec {
    /// Every step the suite may run: its fixtures, then each scenario's
    /// (what touch analysis, the RBAC it needs and its manifest files read).
    pub fn all_steps(&self) -> impl Iterator<Item = &crate::Step> {
        self.fixtures
            .iter()
            .chain(self.scenarios.iter().flat_map(|s| s.steps.iter()))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// Default namespace of every step.
    pub namespace: String,
    /// Nothing outside these namespaces is ever touched (default: `[namespace]`;
    /// filled in by the loader).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_namespaces: Vec<String>,
    /// Create the target namespace before the fixtures (default false: the
    /// namespace must exist, or a fixture creates it).
    #[serde(default)]
    pub create_namespace: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_interval() -> Duration {
    Duration::from_millis(250)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Defaults {
    /// Timeout of a step or assertion without its own.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Poll interval of waits and eventually-assertions.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// A failed scenario is restored and run again up to this many times
    /// (`--retries` overrides): passed after a failure is "flaky".
    #[serde(default)]
    pub retries: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: default_timeout(),
            interval: default_interval(),
            retries: 0,
        }
    }
}

/// One scenario. Hand-written ones live in the suite; AI-generated ones
/// have the same shape (see `schemas/scenario.schema.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertions: Vec<Assertion>,
    /// Probes of this scenario only, run with the suite's (`spec.probes`)
    /// while it runs; names must differ from the suite's. A locked
    /// scenario carries its own SLO this way (`explore --lock`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    /// Metrics worth watching while this scenario runs (free text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    /// What to do if this scenario fails (free text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remediation: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProbeMode {
    /// From the first scenario step to the end of its assertions.
    #[default]
    Continuous,
    DuringFault,
    Before,
    After,
}

/// An HTTP request sent every `every` while scenarios run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    pub name: String,
    pub http: HttpRequestSpec,
    pub every: Duration,
    #[serde(default)]
    pub mode: ProbeMode,
    #[serde(default)]
    pub expect: ProbeExpect,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeExpect {
    /// e.g. `">= 0.99"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<String>,
    /// e.g. `"< 500ms"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<String>,
    /// Longest run of failures allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_outage: Option<Duration>,
}

/// The Prometheus HTTP API that `promql` checks query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`; `--prometheus-url` and
    /// `HEATCHECK_PROMETHEUS_URL` override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Sent with every query; values are templates, e.g. `Bearer {{env.PROM_TOKEN}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// PEM CA bundle to trust for an https URL (relative to the suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

/// `- promql: {query, above | below, for}`: trips when some series of the query is above
/// (below) the value at every evaluation for the whole `for` window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromqlStop {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(rename = "for")]
    pub for_duration: Duration,
}

/// When to abort a run (and restore the cluster).
#[derive(Clone, Debug, PartialEq)]
pub enum StopCondition {
    /// `- maxDuration: 5m`
    MaxDuration(Duration),
    /// `- probe: NAME` with `successRate: {below: 0.5, for: 10s}`
    Probe {
        probe: String,
        success_rate: SuccessRateBelow,
    },
    /// `- resource: {kind, name, jsonpath, equals}`
    Resource(ResourceStop),
    /// `- promql: {query, above | below, for}`
    Promql(PromqlStop),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuccessRateBelow {
    pub below: f64,
    #[serde(rename = "for")]
    pub for_duration: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceStop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub jsonpath: String,
    pub equals: Value,
}

const STOP_KEYS: &[&str] = &["maxDuration", "probe", "successRate", "resource", "promql"];

impl Serialize for StopCondition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            StopCondition::MaxDuration(d) => map.serialize_entry("maxDuration", d)?,
            StopCondition::Probe {
                probe,
                success_rate,
            } => {
                map.serialize_entry("probe", probe)?;
                map.serialize_entry("successRate", success_rate)?;
            }
            StopCondition::Resource(r) => map.serialize_entry("resource", r)?,
            StopCondition::Promql(q) => map.serialize_entry("promql", q)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for StopCondition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StopCondition;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a stop condition: maxDuration, probe with successRate, resource, or promql",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StopCondition, A::Error> {
                let mut max = None;
                let mut probe = None;
                let mut rate = None;
                let mut resource = None;
                let mut promql: Option<PromqlStop> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "maxDuration" => set_once(&mut max, "maxDuration", map.next_value()?)?,
                        "probe" => set_once(&mut probe, "probe", map.next_value()?)?,
                        "successRate" => set_once(&mut rate, "successRate", map.next_value()?)?,
                        "resource" => set_once(&mut resource, "resource", map.next_value()?)?,
                        "promql" => set_once(&mut promql, "promql", map.next_value()?)?,
                        other => return Err(de::Error::unknown_field(other, STOP_KEYS)),
                    }
                }
                if let Some(q) = promql {
                    if max.is_some() || probe.is_some() || rate.is_some() || resource.is_some() {
                        return Err(de::Error::custom(
                            "a stop condition is exactly one of: maxDuration; probe with successRate; resource; promql",
                        ));
                    }
                    if q.above.is_some() == q.below.is_some() {
                        return Err(de::Error::custom(
                            "a promql stop condition needs exactly one of `above` or `below`",
                        ));
                    }
                    return Ok(StopCondition::Promql(q));
                }
                match (max, probe, rate, resource) {
                    (Some(d), None, None, None) => Ok(StopCondition::MaxDuration(d)),
                    (None, Some(probe), Some(success_rate), None) => {
                        Ok(StopCondition::Probe { probe, success_rate })
                    }
                    (None, Some(_), None, None) => Err(de::Error::custom(
                        "a probe stop condition needs `successRate: {below: <0..1>, for: <duration>}`",
                    )),
                    (None, None, None, Some(r)) => Ok(StopCondition::Resource(r)),
                    _ => Err(de::Error::custom(
                        "a stop condition is exactly one of: maxDuration; probe with successRate; resource; promql",
                    )),
                }
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl JsonSchema for StopCondition {
    fn schema_name() -> Cow<'static, str> {
        "StopCondition".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let duration = generator.subschema_for::<Duration>();
        let rate = generator.subschema_for::<SuccessRateBelow>();
        let resource = generator.subschema_for::<ResourceStop>();
        let promql = generator.subschema_for::<PromqlStop>();
        json_schema!({
            "description": "Abort (and restore) when one of these holds.",
            "oneOf": [
                {"type": "object", "properties": {"maxDuration": duration}, "required": ["maxDuration"], "additionalProperties": false},
                {"type": "object", "properties": {"probe": {"type": "string"}, "successRate": rate}, "required": ["probe", "successRate"], "additionalProperties": false},
                {"type": "object", "properties": {"resource": resource}, "required": ["resource"], "additionalProperties": false},
                {"type": "object", "properties": {"promql": promql}, "required": ["promql"], "additionalProperties": false}
            ]
        })
    }
}

/// Namespaces heatcheck never changes unless `policy.allowSystemNamespaces`
/// is true: the control plane's own and those of the chaos engines it drives.
pub(crate) const SYSTEM_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "chaos-mesh",
    "litmus",
];

/// Why a system namespace is refused (the same words at validate, plan and run).
pub fn system_namespace_message(ns: &str) -> String {
    format!(
        "namespace {ns} is a system namespace: heatcheck never changes it unless the suite's policy sets allowSystemNamespaces: true"
    )
}

/// `maxPodsAffected` when the suite's policy sets none.
pub const DEFAULT_MAX_PODS_AFFECTED: u8 = 50;

/// `maxDuration` when the suite's policy sets none (10 minutes).
pub const DEFAULT_MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether `ns` is one of [`SYSTEM_NAMESPACES`].
pub fn is_system_namespace(ns: &str) -> bool {
    SYSTEM_NAMESPACES.contains(&ns)
}

/// Safety policy checked by the guard before anything runs. Unset limits
/// take safe defaults ([`DEFAULT_MAX_PODS_AFFECTED`], [`DEFAULT_MAX_DURATION`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_kinds: Vec<String>,
    /// Largest share (percent) of a namespace's pods one step may delete,
    /// kill or fault (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub max_pods_affected: Option<u8>,
    /// Longest a scenario may run (and the longest sleep, wait or fault in
    /// it); default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Duration>,
    /// Longest the whole run may take, from its start: past it the running
    /// scenario stops, is restored and the run exits 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_duration: Option<Duration>,
    /// e.g. `delete`, `scale`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_verbs: Vec<String>,
    /// Lets steps change kube-system, kube-public, kube-node-lease and the
    /// chaos engines' namespaces (refused by default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_system_namespaces: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AiProvider {
    Anthropic,
    /// OpenAI or any compatible server (`baseUrl`).
    Openai,
    Ollama,
    /// Azure OpenAI: `baseUrl` is the resource endpoint, `model` the deployment name.
    #[serde(rename = "azure-openai")]
    AzureOpenai,
    /// Google Gemini API.
    Gemini,
    /// Amazon Bedrock Converse API; `model` is the model or inference profile ID.
    Bedrock,
}

fn default_count() -> u32 {
    3
}

fn default_max_repairs() -> u32 {
    2
}

fn default_token_budget() -> u32 {
    8000
}

/// How AI scenarios are generated (`heatcheck generate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AiConfig {
    pub provider: AiProvider,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Handlebars template; `{{yaml context}}` and `{{count}}` are available.
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<ContextSelector>,
    #[serde(default)]
    pub include_events: bool,
    #[serde(default = "default_count")]
    pub count: u32,
    #[serde(default = "default_max_repairs")]
    pub max_repairs: u32,
    #[serde(default = "default_token_budget")]
    pub token_budget: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Azure OpenAI `api-version` (default 2024-10-21, or AZURE_OPENAI_API_VERSION).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Amazon Bedrock region (default AWS_REGION, then AWS_DEFAULT_REGION).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default)]
    pub anonymize: bool,
    /// Per request to the model (default 120s); slow local models need more.
    /// A timed-out attempt counts against `maxRepairs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Receive the answer as a stream (server-sent events; an event stream
    /// on Bedrock), so the spinner counts tokens as they arrive. Default:
    /// on when stderr is a terminal; `false` for servers that cannot stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// heatcheck's preamble (scenario kinds, rules, worked examples) before
    /// the system prompt; `false` sends only `system`.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub preamble: bool,
    /// Keep container images, env, probes and resources in the context
    /// (by default only container names and ports are sent).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_context: bool,
    /// What generated scenarios may change: step kinds per object kind. When
    /// set, a candidate with any other mutating step is rejected, and
    /// `deploy --regenerate` grants exactly this (tomorrow's scenarios are
    /// not known when the Role is rendered). Reads are not limited here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_steps: Vec<AllowedSteps>,
}

/// One `ai.allowedSteps` entry: these step kinds on objects of `kind`.
/// Faults create Chaos Mesh objects, so `fault` is allowed on their kinds
/// (PodChaos, NetworkChaos, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedSteps {
    pub kind: String,
    /// e.g. `apps/v1`; discovery picks the preferred version when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Mutating step kinds: apply, create, delete, patch, scale, restart, fault.
    pub steps: Vec<MutatingStep>,
}

/// The step kinds that change objects (waits and sleeps only read).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum MutatingStep {
    Apply,
    Create,
    Delete,
    Patch,
    Scale,
    Restart,
    Fault,
}

impl MutatingStep {
    pub fn as_str(self) -> &'static str {
        match self {
            MutatingStep::Apply => "apply",
            MutatingStep::Create => "create",
            MutatingStep::Delete => "delete",
            MutatingStep::Patch => "patch",
            MutatingStep::Scale => "scale",
            MutatingStep::Restart => "restart",
            MutatingStep::Fault => "fault",
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Objects listed as context for the LLM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContextSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    /// Default: the target's allowNamespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stop_conditions_parse_and_round_trip() {
        for v in [
            json!({"maxDuration": "5m"}),
            json!({"probe": "shop", "successRate": {"below": 0.5, "for": "10s"}}),
            json!({"resource": {"kind": "Deployment", "name": "d", "jsonpath": "$.status.readyReplicas", "equals": 0}}),
            json!({"promql": {"query": "up", "below": 1.0, "for": "5s"}}),
        ] {
            let s: StopCondition = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&s).unwrap(), v);
        }
        for bad in [
            json!({"probe": "shop"}),
            json!({"maxDuration": "1m", "probe": "x"}),
            json!({"maxDur": "1m"}),
            json!({"promql": {"query": "up", "for": "5s"}}),
            json!({"promql": {"query": "up", "above": 1, "below": 2, "for": "5s"}}),
        ] {
            assert!(serde_json::from_value::<StopCondition>(bad).is_err());
        }
    }

    #[test]
    fn ai_defaults() {
        let ai: AiConfig =
            serde_json::from_value(json!({"provider": "openai", "model": "m", "prompt": "p"}))
                .unwrap();
        assert_eq!((ai.count, ai.max_repairs, ai.token_budget), (3, 2, 8000));
        assert!(!ai.include_events && !ai.anonymize);
    }
}
