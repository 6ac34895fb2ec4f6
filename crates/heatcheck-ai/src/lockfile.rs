//! The lockfile (`<suite>.lock.yaml` beside the suite): the generated
//! scenarios plus what produced them, so CI replays them without an LLM.
//! The ai block's hash decides freshness: change the block, regenerate.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use heatcheck_format::{AiConfig, AiProvider, Scenario, Suite, API_VERSION};

pub const LOCK_KIND: &str = "ScenarioLock";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioLock {
    pub api_version: String,
    pub kind: String,
    /// Who wrote the scenarios: `heatcheck <version>` for a model's answer,
    /// or an honest note such as `hand-written seed`.
    pub generated_by: String,
    /// What generated `scenarios` (absent in a lock that only holds
    /// `explored` entries: no model was asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<AiProvider>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "LockParameters::is_unset")]
    pub parameters: LockParameters,
    /// sha256 of the canonical JSON of the suite's `ai` block (empty when
    /// nothing was generated).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ai_block_hash: String,
    /// sha256 of the rendered system and user prompt.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prompt_hash: String,
    /// sha256 of the canonical JSON of the context sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context_hash: String,
    /// When the lock was last written.
    pub generated_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub usage: LockUsage,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
    /// Per locked scenario: repairs needed and the sandbox verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<ScenarioCheck>,
    /// The model's scenarios (fresh while the ai block's hash matches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenarios: Vec<Scenario>,
    /// Findings of `heatcheck explore --lock`, one per finding id: replayed
    /// by every run whatever the ai block says (they were not generated
    /// from it), and failing until their weakness is fixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explored: Vec<ExploredScenario>,
}

/// Where a locked entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockOrigin {
    Explore,
}

/// One finding of `explore`, locked as a regression test: its scenario's
/// assertions and own probes state the healthy expectation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExploredScenario {
    /// The finding's id (`<entry>/<Kind>/<ns>/<name>`): locking it again
    /// replaces this entry.
    pub id: String,
    pub origin: LockOrigin,
    /// Weakness class and severity as explore reported them.
    pub class: String,
    pub severity: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
    pub locked_at: chrono::DateTime<chrono::Utc>,
    /// What failed on the twin when it was locked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    pub scenario: Scenario,
}

/// The scenario name of an explored entry: stable, from the finding's id.
pub fn explored_name(id: &str) -> String {
    format!("explore: {id}")
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    pub count: u32,
    pub max_repairs: u32,
    pub token_budget: u32,
}

impl LockParameters {
    fn is_unset(&self) -> bool {
        *self == LockParameters::default()
    }

    pub fn from_ai(ai: &AiConfig) -> Self {
        LockParameters {
            temperature: ai.temperature,
            top_p: ai.top_p,
            top_k: ai.top_k,
            max_tokens: ai.max_tokens,
            count: ai.count,
            max_repairs: ai.max_repairs,
            token_budget: ai.token_budget,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Requests sent (first answer plus repairs).
    pub requests: u32,
}

/// A scenario the model proposed that was not accepted, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rejected {
    pub name: String,
    /// The request whose answer this was (1 = the first); 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    pub reasons: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How one locked scenario got there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioCheck {
    pub name: String,
    /// Repair requests it took: 0 = valid at the first try.
    pub repairs: u32,
    /// `passed`, `failed: <reason>` (an assertion evaluated and failed on
    /// the sandbox: maybe the weakness the scenario exposes), or
    /// `not run: <why>`.
    pub sandbox_verdict: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: cannot read the lockfile: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot write the lockfile: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid lockfile: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: the lock's ai block hash differs; run `heatcheck generate`")]
    Stale {
        path: PathBuf,
        generated_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("{path}: locked scenario \"{name}\" is invalid: {}", reasons.join("; "))]
    InvalidScenario {
        path: PathBuf,
        name: String,
        reasons: Vec<String>,
    },
}

/// `dir/suite.yaml` -> `dir/suite.lock.yaml`.
pub fn lock_path(suite_path: &Path) -> PathBuf {
    let stem = suite_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("suite");
    suite_path.with_file_name(format!("{stem}.lock.yaml"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// JSON with object keys sorted at every level: one text per value.
pub(crate) fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(v)).unwrap_or_default()
}

/// sha256 of the canonical JSON of the `ai` block (defaults filled in, so
/// writing a default explicitly does not make a lock stale).
pub fn ai_block_hash(ai: &AiConfig) -> String {
    let mut v = serde_json::to_value(ai).unwrap_or(Value::Null);
    // How the answer travels does not change what was asked.
    if let Some(o) = v.as_object_mut() {
        o.remove("stream");
    }
    sha256_hex(canonical_json(&v).as_bytes())
}

pub fn read(path: &Path) -> Result<Option<ScenarioLock>, LockError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LockError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse(&text, path).map(Some)
}

pub fn parse(text: &str, path: &Path) -> Result<ScenarioLock, LockError> {
    let lock: ScenarioLock = serde_saphyr::from_str(text).map_err(|e| LockError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if lock.api_version != API_VERSION || lock.kind != LOCK_KIND {
        return Err(LockError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "expected apiVersion {API_VERSION} and kind {LOCK_KIND}, found {} {}",
                lock.api_version, lock.kind
            ),
        });
    }
    Ok(lock)
}

pub(crate) fn to_yaml(lock: &ScenarioLock) -> String {
    let body = serde_saphyr::to_string(lock).unwrap_or_default();
    format!("# Written by `heatcheck generate` (scenarios) and `heatcheck explore --lock` (explored); review it like code. Regenerate rather than edit.\n{body}")
}

pub fn write(path: &Path, lock: &ScenarioLock) -> Result<(), LockError> {
    let tmp = path.with_extension("yaml.tmp");
    let res = std::fs::write(&tmp, to_yaml(lock)).and_then(|_| std::fs::rename(&tmp, path));
    res.map_err(|source| LockError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// What `run` finds for one suite.
#[derive(Debug)]
pub enum LockState {
    /// The suite has no `ai` block.
    NoAi,
    Missing(PathBuf),
    Stale {
        path: PathBuf,
        generated_at: chrono::DateTime<chrono::Utc>,
    },
    Fresh {
        path: PathBuf,
        lock: Box<ScenarioLock>,
    },
}

pub fn state(suite: &Suite) -> Result<LockState, LockError> {
    let Some(ai) = &suite.spec.ai else {
        return Ok(LockState::NoAi);
    };
    let path = lock_path(&suite.source.path);
    match read(&path)? {
        None => Ok(LockState::Missing(path)),
        // Only explore's entries: nothing was generated yet.
        Some(lock) if lock.ai_block_hash.is_empty() && lock.scenarios.is_empty() => {
            Ok(LockState::Missing(path))
        }
        Some(lock) if lock.ai_block_hash != ai_block_hash(ai) => Ok(LockState::Stale {
            path,
            generated_at: lock.generated_at,
        }),
        Some(lock) => Ok(LockState::Fresh {
            path,
            lock: Box::new(lock),
        }),
    }
}

/// Locked scenarios validated again against the suite as it is now (the
/// same rules as at generation, minus the context: the cluster may differ).
pub fn validated_scenarios(
    suite: &Suite,
    path: &Path,
    lock: &ScenarioLock,
) -> Result<Vec<Scenario>, LockError> {
    for sc in &lock.scenarios {
        let reasons = crate::check::static_problems(sc, suite);
        if !reasons.is_empty() {
            return Err(LockError::InvalidScenario {
                path: path.to_path_buf(),
                name: sc.name.clone(),
                reasons,
            });
        }
    }
    Ok(lock.scenarios.clone())
}

/// The explored entries of the suite's lock, validated against the suite
/// as it is now (whether or not it has an ai block).
pub fn explored_scenarios(suite: &Suite) -> Result<Vec<Scenario>, LockError> {
    let path = lock_path(&suite.source.path);
    let Some(lock) = read(&path)? else {
        return Ok(Vec::new());
    };
    let scenarios: Vec<Scenario> = lock.explored.into_iter().map(|e| e.scenario).collect();
    for sc in &scenarios {
        let reasons = crate::check::static_problems(sc, suite);
        if !reasons.is_empty() {
            return Err(LockError::InvalidScenario {
                path,
                name: sc.name.clone(),
                reasons,
            });
        }
    }
    Ok(scenarios)
}

/// A fresh lock with the explored entries of the one at `path` (if any),
/// so `generate` rewriting the model's part keeps what explore locked.
pub fn carry_explored(path: &Path, lock: &mut ScenarioLock) -> Result<(), LockError> {
    if let Some(old) = read(path)? {
        lock.explored = old.explored;
    }
    Ok(())
}

/// What [`lock_explored`] did, by finding id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Locked {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    /// Explored entries already there and not found this time (kept: the
    /// lock is reviewed, so only a person removes a regression test).
    pub kept: Vec<String>,
}

/// Adds `entries` to the lock at `path` (created when missing), replacing
/// those with the same id; everything else in it is kept as it was.
pub fn lock_explored(
    path: &Path,
    entries: Vec<ExploredScenario>,
    generated_by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Locked, LockError> {
    let mut lock = read(path)?.unwrap_or_else(|| ScenarioLock {
        api_version: API_VERSION.into(),
        kind: LOCK_KIND.into(),
        generated_by: generated_by.into(),
        provider: None,
        model: String::new(),
        parameters: LockParameters::default(),
        ai_block_hash: String::new(),
        prompt_hash: String::new(),
        context_hash: String::new(),
        generated_at: now,
        usage: LockUsage::default(),
        rejected: Vec::new(),
        checks: Vec::new(),
        scenarios: Vec::new(),
        explored: Vec::new(),
    });
    let mut done = Locked::default();
    let new_ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    done.kept = lock
        .explored
        .iter()
        .filter(|e| !new_ids.contains(&e.id.as_str()))
        .map(|e| e.id.clone())
        .collect();
    for e in entries {
        match lock.explored.iter_mut().find(|x| x.id == e.id) {
            Some(x) => {
                done.replaced.push(e.id.clone());
                *x = e;
            }
            None => {
                done.added.push(e.id.clone());
                lock.explored.push(e);
            }
        }
    }
    // A recreated route keeps its new precedence after the restore, so
    // those replay last on one sandbox (as explore --write-suite orders them).
    lock.explored.sort_by_key(|e| e.class == "route-precedence");
    write(path, &lock)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> ScenarioLock {
        let sc: Scenario = serde_json::from_value(json!({
            "name": "ai: delete the route", "description": "d",
            "steps": [{"delete": {"kind": "HTTPRoute", "name": "r"}}, {"sleep": "1500ms"},
                {"fault": {"type": "networkDelay", "selector": "app=web", "duration": "10s", "latency": "200ms"}},
                {"patch": {"kind": "Service", "name": "s", "patch": {"spec": {"ports": [{"port": 81}]}}}}],
            "assertions": [{"name": "gone", "http": {"url": "{{gateway \"gw\"}}/x", "headers": {"Host": "a"}, "expect": {"status": [404, 503], "json": {"$.pod": {"matches": "^v1-"}}}}}],
            "metrics": ["m"], "remediation": ["r"]
        }))
        .unwrap();
        ScenarioLock {
            api_version: API_VERSION.into(),
            kind: LOCK_KIND.into(),
            generated_by: "heatcheck test".into(),
            provider: Some(AiProvider::Openai),
            model: "m".into(),
            parameters: LockParameters {
                temperature: Some(0.2),
                count: 1,
                max_repairs: 2,
                token_budget: 8000,
                ..Default::default()
            },
            ai_block_hash: "a".into(),
            prompt_hash: "p".into(),
            context_hash: "c".into(),
            generated_at: "2026-01-02T03:04:05Z".parse().unwrap(),
            usage: LockUsage {
                input_tokens: 10,
                output_tokens: 20,
                requests: 2,
            },
            rejected: vec![Rejected {
                name: "bad".into(),
                attempt: 1,
                reasons: vec!["steps[0]: namespace kube-system".into()],
            }],
            checks: vec![ScenarioCheck {
                name: "ai: delete the route".into(),
                repairs: 1,
                sandbox_verdict: "failed: gone: status 200".into(),
            }],
            scenarios: vec![sc],
            explored: Vec::new(),
        }
    }

    fn explored(id: &str, evidence: &str) -> ExploredScenario {
        let scenario: Scenario = serde_json::from_value(json!({
            "name": explored_name(id),
            "steps": [{"fault": {"type": "podKill", "selector": "app=solo", "duration": "4s"}}],
            "assertions": [{"name": "solo answers", "http": {"url": "http://gw/solo"}}],
            "probes": [{"name": "traffic to /solo", "http": {"url": "http://gw/solo"}, "every": "100ms",
                "expect": {"successRate": ">= 0.99"}}]
        }))
        .unwrap();
        ExploredScenario {
            id: id.into(),
            origin: LockOrigin::Explore,
            class: "single-pod".into(),
            severity: "outage".into(),
            flaky: false,
            locked_at: "2026-01-02T03:04:05Z".parse().unwrap(),
            evidence: vec![evidence.into()],
            scenario,
        }
    }

    #[test]
    fn explore_entries_are_added_replaced_by_id_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("suite.lock.yaml");
        let now = "2026-01-03T00:00:00Z".parse().unwrap();
        // A lock of explore entries only: no model fields at all.
        let done = lock_explored(
            &p,
            vec![explored("a/x", "1.2s of outage")],
            "heatcheck t",
            now,
        )
        .unwrap();
        assert_eq!(done.added, ["a/x"]);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            !text.contains("provider") && !text.contains("aiBlockHash"),
            "{text}"
        );
        assert!(text.contains("origin: explore"), "{text}");
        assert!(
            text.contains("name: 'explore: a/x'") || text.contains("name: \"explore: a/x\""),
            "{text}"
        );
        // Beside a model's lock: its part untouched, the same id replaced.
        write(&p, &sample()).unwrap();
        lock_explored(&p, vec![explored("a/x", "old")], "heatcheck t", now).unwrap();
        let done = lock_explored(
            &p,
            vec![explored("a/x", "new"), explored("b/y", "e")],
            "heatcheck t",
            now,
        )
        .unwrap();
        assert_eq!(
            (done.added, done.replaced),
            (vec!["b/y".to_string()], vec!["a/x".to_string()])
        );
        let lock = read(&p).unwrap().unwrap();
        assert_eq!(lock.scenarios, sample().scenarios);
        assert_eq!(lock.ai_block_hash, "a");
        assert_eq!(lock.explored.len(), 2);
        assert_eq!(lock.explored[0].evidence, ["new"]);
        // Not found again: kept (a person removes a regression test).
        let done = lock_explored(&p, vec![explored("b/y", "e")], "heatcheck t", now).unwrap();
        assert_eq!(done.kept, ["a/x"]);
        assert_eq!(read(&p).unwrap().unwrap().explored.len(), 2);
        // A regenerated model part keeps them.
        let mut fresh = sample();
        carry_explored(&p, &mut fresh).unwrap();
        assert_eq!(fresh.explored.len(), 2);
        let back = parse(&to_yaml(&fresh), Path::new("x")).unwrap();
        assert_eq!(back, fresh);
    }

    #[test]
    fn round_trips_through_yaml() {
        let lock = sample();
        let text = to_yaml(&lock);
        let back = parse(&text, Path::new("x.lock.yaml")).unwrap();
        assert_eq!(back, lock);
        assert_eq!(to_yaml(&back), text, "stable text");
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("suite.lock.yaml");
        assert!(read(&p).unwrap().is_none());
        write(&p, &sample()).unwrap();
        assert_eq!(read(&p).unwrap().unwrap(), sample());
        std::fs::write(&p, "apiVersion: v1\nkind: Nope\n").unwrap();
        assert!(matches!(read(&p), Err(LockError::Parse { .. })));
    }

    #[test]
    fn paths_and_hashes() {
        assert_eq!(
            lock_path(Path::new("suites/x/suite.yaml")),
            PathBuf::from("suites/x/suite.lock.yaml")
        );
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": {"d": 2, "c": [3]}})),
            r#"{"a":{"c":[3],"d":2},"b":1}"#
        );
        let ai: AiConfig =
            serde_json::from_value(json!({"provider": "openai", "model": "m", "prompt": "p"}))
                .unwrap();
        let explicit: AiConfig = serde_json::from_value(
            json!({"provider": "openai", "model": "m", "prompt": "p", "count": 3}),
        )
        .unwrap();
        assert_eq!(ai_block_hash(&ai), ai_block_hash(&explicit));
        let other: AiConfig =
            serde_json::from_value(json!({"provider": "openai", "model": "m", "prompt": "p2"}))
                .unwrap();
        assert_ne!(ai_block_hash(&ai), ai_block_hash(&other));
        assert_eq!(ai_block_hash(&ai).len(), 64);
        // Streaming or not, the same question: the lock stays fresh.
        let streamed: AiConfig = serde_json::from_value(
            json!({"provider": "openai", "model": "m", "prompt": "p", "stream": false}),
        )
        .unwrap();
        assert_eq!(ai_block_hash(&ai), ai_block_hash(&streamed));
    }
}
