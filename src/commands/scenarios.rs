//! Which scenarios a run runs: the hand-written ones plus the locked AI ones
//! (or none of those when the lock is missing or stale, unless `--locked`
//! makes that an error), narrowed by `--scenario` and `--partition`. `run`,
//! `plan` and `deploy` all take their scenario set from here, so the Role
//! `plan`/`deploy` render is the one the run's permission preflight checks.

use crate::ai::lockfile::{self, LockState};
use crate::engine::partition::Partition;
use crate::error::Error;
use crate::suite::{Scenario, Suite};

/// The locked scenarios a run of `suite` replays: the model's and explore's.
/// With `locked` a suite with an ai block and no fresh lock is an error;
/// without it, a warning and none of the model's.
pub(crate) fn locked_scenarios(suite: &Suite, locked: bool) -> Result<Vec<Scenario>, Error> {
    let mut out = generated_scenarios(suite, locked)?;
    // explore's entries replay whatever the ai block says (or whether
    // there is one): they were found on the namespace, not generated.
    out.extend(lockfile::explored_scenarios(suite).map_err(Error::invalid)?);
    Ok(out)
}

/// The model's locked scenarios (see [`locked_scenarios`]).
fn generated_scenarios(suite: &Suite, locked: bool) -> Result<Vec<Scenario>, Error> {
    let state = lockfile::state(suite).map_err(Error::invalid)?;
    match state {
        LockState::NoAi => Ok(Vec::new()),
        LockState::Fresh { path, lock } => {
            lockfile::validated_scenarios(suite, &path, &lock).map_err(Error::invalid)
        }
        LockState::Missing(path) if locked => Err(Error::invalid(format!(
            "{}: the suite has an ai block but {} {}; run `heatcheck generate {}` (--locked never calls an LLM)",
            suite.source.path.display(),
            // explore --lock may have written one with its entries only.
            if path.exists() { "no generated scenarios in its lockfile" } else { "no lockfile" },
            super::relative(&path),
            super::relative(&suite.source.path)
        ))),
        LockState::Stale { path, generated_at } if locked => Err(Error::invalid(format!(
            "{}: lock is stale: the ai block changed since {}; run `heatcheck generate {}`",
            super::relative(&path),
            generated_at.to_rfc3339(),
            super::relative(&suite.source.path)
        ))),
        LockState::Missing(_) => {
            stderr_line!(
                "warning: {}: no lockfile; running the hand-written scenarios only (`heatcheck generate` writes one)",
                suite.source.path.display()
            );
            Ok(Vec::new())
        }
        LockState::Stale { path, generated_at } => {
            stderr_line!(
                "warning: {}: lock is stale (the ai block changed since {}); running the hand-written scenarios only",
                super::relative(&path),
                generated_at.to_rfc3339()
            );
            Ok(Vec::new())
        }
    }
}

/// Each suite with its locked scenarios (see [`locked_scenarios`]).
pub(crate) fn with_locked(
    suites: Vec<Suite>,
    locked: bool,
) -> Result<Vec<(Suite, Vec<Scenario>)>, Error> {
    suites
        .into_iter()
        .map(|s| locked_scenarios(&s, locked).map(|l| (s, l)))
        .collect()
}

/// `--scenario NAME`s that name no scenario of any suite (hand-written or
/// locked) are an error, listing the known ones.
pub(crate) fn check_known(
    suites: &[(&Suite, &[Scenario])],
    wanted: &[String],
) -> Result<(), Error> {
    if wanted.is_empty() {
        return Ok(());
    }
    let known: Vec<&str> = suites
        .iter()
        .flat_map(|(s, locked)| {
            s.spec
                .scenarios
                .iter()
                .chain(locked.iter())
                .map(|sc| sc.name.as_str())
        })
        .collect();
    let unknown: Vec<String> = wanted
        .iter()
        .filter(|n| !known.contains(&n.as_str()))
        .map(|n| format!("{n:?}"))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "no scenario named {} (known: {})",
        unknown.join(", "),
        known.join(", ")
    )))
}

/// Keeps this shard's scenarios (of those `--scenario` selects) and drops
/// suites left with none, so their fixtures and steady state run only in
/// shards that have work for them.
pub(crate) fn apply_partition(
    partition: Partition,
    only: &[String],
    suites: Vec<(Suite, Vec<Scenario>)>,
) -> Vec<(Suite, Vec<Scenario>)> {
    let wanted = |sc: &Scenario| only.is_empty() || only.iter().any(|n| n == &sc.name);
    let items: Vec<(&str, &str)> = suites
        .iter()
        .flat_map(|(suite, locked)| {
            suite
                .spec
                .scenarios
                .iter()
                .chain(locked)
                .filter(|sc| wanted(sc))
                .map(|sc| (suite.metadata.name.as_str(), sc.name.as_str()))
        })
        .collect();
    let mut picked = partition.select(&items).into_iter();
    let total = items.len();
    let mut kept_scenarios = 0;
    let mut out = Vec::new();
    for (mut suite, locked) in suites {
        // A suite of steady-state checks only runs in the first shard.
        if suite.spec.scenarios.is_empty() && locked.is_empty() {
            if partition.shard == 1 {
                out.push((suite, locked));
            }
            continue;
        }
        let mut keep = |sc: &Scenario| wanted(sc) && picked.next().unwrap_or(false);
        suite.spec.scenarios.retain(|sc| keep(sc));
        let locked: Vec<Scenario> = locked.into_iter().filter(|sc| keep(sc)).collect();
        let n = suite.spec.scenarios.len() + locked.len();
        if n > 0 {
            kept_scenarios += n;
            out.push((suite, locked));
        }
    }
    stderr_line!(
        "partition {partition}: {kept_scenarios} of {total} scenario(s), in {} suite(s)",
        out.len()
    );
    out
}

/// One suite per entry with its locked scenarios appended: what the guard,
/// the preflight and the engine see.
pub(crate) fn combined(suites: &[(Suite, Vec<Scenario>)]) -> Vec<Suite> {
    suites
        .iter()
        .map(|(s, locked)| {
            let mut s = s.clone();
            s.spec.scenarios.extend(locked.iter().cloned());
            s
        })
        .collect()
}
