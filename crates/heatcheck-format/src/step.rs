//! Steps: the closed set of actions a scenario (or the fixtures) performs.
//!
//! YAML shape: one action key per step, beside the optional common keys
//! `name`, `timeout`, `continueOnError`:
//! `- apply: {file: m.yaml}` or `- name: kill\n  delete: {kind: HTTPRoute, name: r}`.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::duration::Duration;
use super::matcher::Matcher;

/// Action keys of a step, in the order shown to users.
pub const STEP_KINDS: &[&str] = &[
    "apply", "create", "delete", "patch", "scale", "restart", "wait", "sleep", "fault",
];

/// Keys every step may carry beside its action.
pub(crate) const STEP_COMMON_KEYS: &[&str] = &["name", "timeout", "continueOnError"];

/// One step: common settings plus exactly one action.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub name: Option<String>,
    /// Overrides `spec.defaults.timeout` for this step.
    pub timeout: Option<Duration>,
    /// A failure of this step is reported but does not fail the scenario.
    pub continue_on_error: bool,
    pub action: StepAction,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepAction {
    Apply(ApplyStep),
    Create(ApplyStep),
    Delete(DeleteStep),
    Patch(PatchStep),
    Scale(ScaleStep),
    Restart(RestartStep),
    Wait(WaitStep),
    Sleep(Duration),
    Fault(FaultStep),
}

impl StepAction {
    /// The YAML key of this action (`apply`, `wait`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            StepAction::Apply(_) => "apply",
            StepAction::Create(_) => "create",
            StepAction::Delete(_) => "delete",
            StepAction::Patch(_) => "patch",
            StepAction::Scale(_) => "scale",
            StepAction::Restart(_) => "restart",
            StepAction::Wait(_) => "wait",
            StepAction::Sleep(_) => "sleep",
            StepAction::Fault(_) => "fault",
        }
    }

    /// The namespace written on the step, if any (None = the target namespace).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            StepAction::Apply(s) | StepAction::Create(s) => s.namespace.as_deref(),
            StepAction::Delete(s) => s.namespace.as_deref(),
            StepAction::Patch(s) => s.namespace.as_deref(),
            StepAction::Scale(s) => s.namespace.as_deref(),
            StepAction::Restart(s) => s.namespace.as_deref(),
            StepAction::Wait(s) => s.namespace.as_deref(),
            StepAction::Fault(s) => s.namespace.as_deref(),
            StepAction::Sleep(_) => None,
        }
    }
}

impl Step {
    /// A step with no common keys set.
    pub fn new(action: StepAction) -> Self {
        Step {
            name: None,
            timeout: None,
            continue_on_error: false,
            action,
        }
    }

    /// The timeout that applies: the step's own, else a `wait`'s inline
    /// `timeout`, else the suite default.
    pub fn effective_timeout(&self, default: Duration) -> std::time::Duration {
        let inline = match &self.action {
            StepAction::Wait(w) => w.timeout,
            _ => None,
        };
        self.timeout.or(inline).unwrap_or(default).0
    }

    /// A name for reports: the given name, else `<action> <kind>/<name>`.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let target = |kind: &str, name: Option<&str>| match name {
            Some(n) => format!(" {kind}/{n}"),
            None => format!(" {kind}"),
        };
        let detail = match &self.action {
            StepAction::Apply(s) | StepAction::Create(s) => s
                .file
                .as_deref()
                .map(|f| format!(" {f}"))
                .unwrap_or_else(|| " inline manifest".into()),
            StepAction::Delete(s) => match &s.file {
                Some(f) => format!(" {f}"),
                None => target(
                    s.kind.as_deref().unwrap_or("?"),
                    s.name.as_deref().or(s.selector.as_deref()),
                ),
            },
            StepAction::Patch(s) => target(&s.kind, Some(&s.name)),
            StepAction::Scale(s) => format!("{} to {}", target(&s.kind, Some(&s.name)), s.replicas),
            StepAction::Restart(s) => target(&s.kind, Some(&s.name)),
            StepAction::Wait(s) => target(&s.kind, s.name.as_deref().or(s.selector.as_deref())),
            StepAction::Sleep(d) => format!(" {d}"),
            StepAction::Fault(s) => format!(" {} on {}", s.fault_type.as_str(), s.selector),
        };
        format!("{}{}", self.action.kind(), detail)
    }
}

fn default_true() -> bool {
    true
}

fn default_deployment() -> String {
    "Deployment".to_string()
}

/// `apply` / `create`: a manifest from a file (relative to the suite file) or inline text.
/// Exactly one of `file` and `manifest`. Both may hold several YAML documents
/// and handlebars templates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyStep {
    /// Path of a manifest file, relative to the suite file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Inline manifest text (may be multi-document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `delete`: the objects of a manifest file, or objects by kind and name/selector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteStep {
    /// Delete the objects listed in this manifest file (relative to the suite file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Required unless `file` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Label selector, e.g. `app=shop,tier!=db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Wait until the objects are gone.
    #[serde(default = "default_true")]
    pub wait: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PatchType {
    /// JSON merge patch (RFC 7386).
    #[default]
    Merge,
    /// JSON patch (RFC 6902): `patch` is a list of operations.
    Json,
    /// Kubernetes strategic merge patch.
    Strategic,
}

/// `patch`: patch one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(rename = "type", default)]
    pub patch_type: PatchType,
    pub patch: Value,
}

/// `scale`: set the replicas of a Deployment (or any kind with a scale subresource).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default = "default_deployment")]
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub replicas: u32,
}

/// `restart`: rolling restart (like `kubectl rollout restart`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default = "default_deployment")]
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `wait`: poll objects until exactly one condition holds:
/// `jsonpath` with `equals` or `matches`; `condition` (status "True" unless
/// `status` says otherwise); `present`; or `available` (Deployments).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) jsonpath: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) equals: Option<Value>,
    /// Regex the value at `jsonpath` must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) matches: Option<String>,
    /// A `status.conditions[].type`, e.g. `Ready` or `Accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) condition: Option<String>,
    /// Status the `condition` must have (default "True").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<String>,
    /// true: wait until the object exists; false: until it is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) present: Option<bool>,
    /// Deployment available: readyReplicas == replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) available: Option<bool>,
    /// Same as the step's `timeout` (accepted here for readability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<Duration>,
}

/// The one condition of a validated [`WaitStep`].
#[derive(Clone, Debug, PartialEq)]
pub enum WaitCondition {
    JsonPath {
        path: String,
        expect: Matcher,
    },
    Condition {
        condition_type: String,
        status: String,
    },
    Present(bool),
    Available(bool),
}

impl WaitStep {
    /// The condition to wait for; Err says why the step is ill-formed
    /// (load-time validation reports the same text).
    pub fn condition(&self) -> Result<WaitCondition, String> {
        let mut given = Vec::new();
        if self.jsonpath.is_some() {
            given.push("jsonpath");
        }
        if self.condition.is_some() {
            given.push("condition");
        }
        if self.present.is_some() {
            given.push("present");
        }
        if self.available.is_some() {
            given.push("available");
        }
        if given.len() != 1 {
            let found = if given.is_empty() {
                "none".to_string()
            } else {
                given.join(", ")
            };
            return Err(format!(
                "a wait step needs exactly one condition (jsonpath, condition, present or available), found {found}"
            ));
        }
        if self.status.is_some() && self.condition.is_none() {
            return Err("`status` only applies together with `condition`".into());
        }
        if (self.equals.is_some() || self.matches.is_some()) && self.jsonpath.is_none() {
            return Err("`equals` and `matches` only apply together with `jsonpath`".into());
        }
        if let Some(path) = &self.jsonpath {
            let expect = match (&self.equals, &self.matches) {
                (Some(v), None) => Matcher::Equals(v.clone()),
                (None, Some(re)) => Matcher::Matches(re.clone()),
                _ => {
                    return Err(
                        "a wait on `jsonpath` needs exactly one of `equals` or `matches`".into(),
                    )
                }
            };
            return Ok(WaitCondition::JsonPath {
                path: path.clone(),
                expect,
            });
        }
        if let Some(c) = &self.condition {
            return Ok(WaitCondition::Condition {
                condition_type: c.clone(),
                status: self.status.clone().unwrap_or_else(|| "True".into()),
            });
        }
        if let Some(p) = self.present {
            return Ok(WaitCondition::Present(p));
        }
        Ok(WaitCondition::Available(self.available.unwrap_or(true)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FaultType {
    NetworkDelay,
    NetworkLoss,
    NetworkPartition,
    PodKill,
}

impl FaultType {
    pub fn as_str(&self) -> &'static str {
        match self {
            FaultType::NetworkDelay => "networkDelay",
            FaultType::NetworkLoss => "networkLoss",
            FaultType::NetworkPartition => "networkPartition",
            FaultType::PodKill => "podKill",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum FaultEngine {
    #[default]
    ChaosMesh,
    Litmus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Direction {
    To,
    From,
    Both,
}

fn default_percent() -> u8 {
    100
}

/// `fault`: a network or pod fault, rendered as a Chaos Mesh / Litmus resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultStep {
    #[serde(rename = "type")]
    pub fault_type: FaultType,
    #[serde(default)]
    pub(crate) engine: FaultEngine,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Label selector of the target pods.
    pub selector: String,
    /// Share of the selected pods affected, 1..=100.
    #[serde(default = "default_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub percent: u8,
    /// How long the fault stays in place.
    pub duration: Duration,
    /// networkDelay: added latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) jitter: Option<Duration>,
    /// networkLoss: percent of packets dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub(crate) loss: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) direction: Option<Direction>,
    /// networkPartition: label selector of the other side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Resolve a manifest path as written in a suite against the suite directory.
pub fn resolve_manifest_path(suite_dir: &Path, written: &str) -> PathBuf {
    let p = Path::new(written);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        suite_dir.join(p)
    }
}

/// Set by `heatcheck mcp` for the commands it runs: manifest files must
/// resolve (symlinks followed) inside this folder, as every path its
/// client gives does, so a suite under the root cannot read past it.
pub(crate) const FILES_ROOT_ENV: &str = "HEATCHECK_FILES_ROOT";

fn read_manifest(suite_dir: &Path, written: &str) -> Result<String, super::SuiteError> {
    let path = resolve_manifest_path(suite_dir, written);
    if let Some(root) = std::env::var_os(FILES_ROOT_ENV) {
        let root = Path::new(&root);
        let inside = match (path.canonicalize(), root.canonicalize()) {
            (Ok(p), Ok(r)) => p.starts_with(r),
            // Missing: the read below says so.
            (Err(_), _) => true,
            (_, Err(_)) => false,
        };
        if !inside {
            return Err(super::SuiteError::Other(format!(
                "manifest {written}: {} is outside {} (the folder heatcheck mcp serves); refused",
                path.display(),
                root.display()
            )));
        }
    }
    std::fs::read_to_string(&path).map_err(|source| super::SuiteError::Manifest {
        written: written.to_string(),
        path,
        source,
    })
}

impl ApplyStep {
    /// The raw (unrendered) manifest text: the file's content, read now,
    /// or the inline text. Render it with the [`super::Templater`] before use.
    pub fn resolve_source(&self, suite_dir: &Path) -> Result<String, super::SuiteError> {
        match (&self.file, &self.manifest) {
            (Some(f), _) => read_manifest(suite_dir, f),
            (None, Some(m)) => Ok(m.clone()),
            (None, None) => Err(super::SuiteError::Other(
                "apply step has neither file nor manifest".into(),
            )),
        }
    }
}

impl DeleteStep {
    /// The raw manifest text when the step deletes by `file`; None when it
    /// deletes by kind and name/selector.
    pub fn resolve_source(&self, suite_dir: &Path) -> Result<Option<String>, super::SuiteError> {
        self.file
            .as_deref()
            .map(|f| read_manifest(suite_dir, f))
            .transpose()
    }
}

// ---- serde for Step: one action key beside optional common keys ----

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(n) = &self.name {
            map.serialize_entry("name", n)?;
        }
        if let Some(t) = &self.timeout {
            map.serialize_entry("timeout", t)?;
        }
        if self.continue_on_error {
            map.serialize_entry("continueOnError", &true)?;
        }
        let key = self.action.kind();
        match &self.action {
            StepAction::Apply(s) | StepAction::Create(s) => map.serialize_entry(key, s)?,
            StepAction::Delete(s) => map.serialize_entry(key, s)?,
            StepAction::Patch(s) => map.serialize_entry(key, s)?,
            StepAction::Scale(s) => map.serialize_entry(key, s)?,
            StepAction::Restart(s) => map.serialize_entry(key, s)?,
            StepAction::Wait(s) => map.serialize_entry(key, s)?,
            StepAction::Sleep(d) => map.serialize_entry(key, d)?,
            StepAction::Fault(s) => map.serialize_entry(key, s)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = Step;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a step: a mapping with one of {}", STEP_KINDS.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
        let mut name = None;
        let mut timeout = None;
        let mut continue_on_error = None;
        let mut action: Option<(String, StepAction)> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => set_once(&mut name, "name", map.next_value()?)?,
                "timeout" => set_once(&mut timeout, "timeout", map.next_value()?)?,
                "continueOnError" => {
                    set_once(&mut continue_on_error, "continueOnError", map.next_value()?)?
                }
                k if STEP_KINDS.contains(&k) => {
                    if let Some((first, _)) = &action {
                        return Err(de::Error::custom(format!(
                            "a step takes exactly one action, found both \"{first}\" and \"{k}\""
                        )));
                    }
                    let a = match k {
                        "apply" => StepAction::Apply(map.next_value()?),
                        "create" => StepAction::Create(map.next_value()?),
                        "delete" => StepAction::Delete(map.next_value()?),
                        "patch" => StepAction::Patch(map.next_value()?),
                        "scale" => StepAction::Scale(map.next_value()?),
                        "restart" => StepAction::Restart(map.next_value()?),
                        "wait" => StepAction::Wait(map.next_value()?),
                        "sleep" => StepAction::Sleep(map.next_value()?),
                        _ => StepAction::Fault(map.next_value()?),
                    };
                    action = Some((key, a));
                }
                other => return Err(de::Error::unknown_variant(other, STEP_KINDS)),
            }
        }
        let (_, action) = action.ok_or_else(|| {
            de::Error::custom(format!(
                "a step needs one action: one of {}",
                STEP_KINDS.join(", ")
            ))
        })?;
        Ok(Step {
            name,
            timeout,
            continue_on_error: continue_on_error.unwrap_or(false),
            action,
        })
    }
}

/// Shared by the step and assertion visitors: a key given twice is an error.
pub(crate) fn set_once<T, E: de::Error>(slot: &mut Option<T>, key: &str, v: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom(format!("duplicate key \"{key}\"")));
    }
    *slot = Some(v);
    Ok(())
}

impl JsonSchema for Step {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let duration = generator.subschema_for::<Duration>();
        let apply = generator.subschema_for::<ApplyStep>();
        let actions: Vec<(&str, Schema)> = vec![
            ("apply", apply.clone()),
            ("create", apply),
            ("delete", generator.subschema_for::<DeleteStep>()),
            ("patch", generator.subschema_for::<PatchStep>()),
            ("scale", generator.subschema_for::<ScaleStep>()),
            ("restart", generator.subschema_for::<RestartStep>()),
            ("wait", generator.subschema_for::<WaitStep>()),
            ("sleep", duration.clone()),
            ("fault", generator.subschema_for::<FaultStep>()),
        ];
        let variants: Vec<Value> = actions
            .into_iter()
            .map(|(key, schema)| {
                serde_json::json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "timeout": duration.clone(),
                        "continueOnError": {"type": "boolean"},
                        key: schema,
                    },
                    "required": [key],
                    "additionalProperties": false
                })
            })
            .collect();
        json_schema!({
            "description": "One step: exactly one action key (apply, create, delete, patch, scale, restart, wait, sleep, fault) beside the optional name, timeout and continueOnError.",
            "oneOf": variants
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(v: Value) -> Step {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_every_action_and_round_trips() {
        let cases = [
            json!({"apply": {"file": "m.yaml"}}),
            json!({"create": {"manifest": "kind: ConfigMap", "namespace": "x"}}),
            json!({"delete": {"kind": "HTTPRoute", "name": "r", "wait": false}}),
            json!({"patch": {"kind": "Service", "name": "s", "type": "json", "patch": [{"op": "remove", "path": "/spec/x"}]}}),
            json!({"scale": {"kind": "Deployment", "name": "d", "replicas": 0}}),
            json!({"restart": {"kind": "Deployment", "name": "d"}}),
            json!({"wait": {"kind": "Deployment", "name": "d", "available": true}}),
            json!({"sleep": "2s"}),
            json!({"fault": {"type": "networkDelay", "engine": "chaosMesh", "selector": "app=a", "percent": 50, "duration": "30s", "latency": "100ms"}}),
            json!({"name": "kill", "timeout": "10s", "continueOnError": true, "delete": {"kind": "HTTPRoute", "name": "r", "wait": true}}),
        ];
        for v in cases {
            let s = step(v.clone());
            assert_eq!(serde_json::to_value(&s).unwrap(), v);
        }
    }

    #[test]
    fn defaults_apply() {
        let s = step(json!({"scale": {"name": "d", "replicas": 2}}));
        let StepAction::Scale(sc) = s.action else {
            panic!()
        };
        assert_eq!(sc.kind, "Deployment");
        let s = step(json!({"delete": {"kind": "Pod", "selector": "app=x"}}));
        let StepAction::Delete(d) = s.action else {
            panic!()
        };
        assert!(d.wait);
        let s = step(json!({"fault": {"type": "podKill", "selector": "app=x", "duration": "1s"}}));
        let StepAction::Fault(f) = s.action else {
            panic!()
        };
        assert_eq!((f.percent, f.engine), (100, FaultEngine::ChaosMesh));
        let s = step(json!({"patch": {"kind": "Service", "name": "s", "patch": {}}}));
        let StepAction::Patch(p) = s.action else {
            panic!()
        };
        assert_eq!(p.patch_type, PatchType::Merge);
    }

    #[test]
    fn rejects_unknown_missing_and_double_actions() {
        let err = serde_json::from_value::<Step>(json!({"aplly": {}})).unwrap_err();
        assert!(err.to_string().contains("unknown variant `aplly`"), "{err}");
        let err = serde_json::from_value::<Step>(json!({"name": "x"})).unwrap_err();
        assert!(err.to_string().contains("needs one action"), "{err}");
        let err = serde_json::from_value::<Step>(
            json!({"sleep": "1s", "wait": {"kind": "Pod", "present": true}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly one action"), "{err}");
        let err = serde_json::from_value::<Step>(json!({"apply": {"fil": "x"}})).unwrap_err();
        assert!(err.to_string().contains("unknown field `fil`"), "{err}");
    }

    #[test]
    fn wait_condition_rules() {
        let w = |v: Value| -> WaitStep { serde_json::from_value(v).unwrap() };
        assert_eq!(
            w(json!({"kind": "HTTPRoute", "name": "r", "jsonpath": "$.a", "equals": "True"}))
                .condition(),
            Ok(WaitCondition::JsonPath {
                path: "$.a".into(),
                expect: Matcher::Equals(json!("True"))
            })
        );
        assert_eq!(
            w(json!({"kind": "Pod", "condition": "Ready"})).condition(),
            Ok(WaitCondition::Condition {
                condition_type: "Ready".into(),
                status: "True".into()
            })
        );
        assert_eq!(
            w(json!({"kind": "Pod", "present": false})).condition(),
            Ok(WaitCondition::Present(false))
        );
        assert!(w(json!({"kind": "Pod"}))
            .condition()
            .unwrap_err()
            .contains("found none"));
        assert!(
            w(json!({"kind": "Pod", "present": true, "available": true}))
                .condition()
                .unwrap_err()
                .contains("found present, available")
        );
        assert!(w(json!({"kind": "Pod", "jsonpath": "$.a"}))
            .condition()
            .is_err());
        assert!(
            w(json!({"kind": "Pod", "present": true, "status": "False"}))
                .condition()
                .is_err()
        );
    }

    #[test]
    fn effective_timeout_prefers_step_then_inline_then_default() {
        let mut s = step(json!({"wait": {"kind": "Pod", "present": true, "timeout": "5s"}}));
        let def = Duration::from_secs(30);
        assert_eq!(s.effective_timeout(def), std::time::Duration::from_secs(5));
        s.timeout = Some(Duration::from_secs(1));
        assert_eq!(s.effective_timeout(def), std::time::Duration::from_secs(1));
        let s = step(json!({"sleep": "1s"}));
        assert_eq!(s.effective_timeout(def), std::time::Duration::from_secs(30));
    }

    #[test]
    fn resolves_manifest_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.yaml"), "kind: ConfigMap\n").unwrap();
        let file = ApplyStep {
            file: Some("m.yaml".into()),
            ..Default::default()
        };
        assert_eq!(
            file.resolve_source(dir.path()).unwrap(),
            "kind: ConfigMap\n"
        );
        let inline = ApplyStep {
            manifest: Some("kind: Secret".into()),
            ..Default::default()
        };
        assert_eq!(inline.resolve_source(dir.path()).unwrap(), "kind: Secret");
        let missing = ApplyStep {
            file: Some("nope.yaml".into()),
            ..Default::default()
        };
        let err = missing.resolve_source(dir.path()).unwrap_err().to_string();
        assert!(err.contains("nope.yaml"), "{err}");
    }
}
