//! The server's resources: the suites under the root, their lockfiles, and
//! the newest reports (`run --report-json`, `explore --findings`,
//! `remediate --output json` saved to a file), so an assistant can read
//! them without a tool call. URIs are `file://` URLs of paths inside the
//! root; reading one checks the root again (a symlink out of it is refused).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What a resource is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Suite,
    Lockfile,
    RunReport,
    Findings,
    Remediation,
}

impl Kind {
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Kind::Suite | Kind::Lockfile => "application/yaml",
            _ => "application/json",
        }
    }

    pub(crate) fn words(self) -> &'static str {
        match self {
            Kind::Suite => "heatcheck suite",
            Kind::Lockfile => "lockfile (reviewed AI scenarios, `run --locked`)",
            Kind::RunReport => "run report (`run --report-json`)",
            Kind::Findings => "explore findings (`explore --findings`)",
            Kind::Remediation => "remediation report (`remediate --output json`)",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Found {
    /// Relative to the root.
    pub(crate) rel: PathBuf,
    pub(crate) kind: Kind,
    pub(crate) size: u64,
}

/// Directories never walked: build output, VCS, dependencies, run state.
const SKIP: &[&str] = &["target", "node_modules", "vendor"];
/// Bounds, so a huge root does not stall the listing.
const MAX_FILES: usize = 5000;
const MAX_DEPTH: usize = 8;
const REPORTS: usize = 20;

/// What a file under the root is, by a look at its start (None: not ours).
fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "yaml" | "yml" | "json") {
        return None;
    }
    // The first 4 KiB say what it is; a report's keys come first.
    let mut head = vec![0u8; 4096];
    let n = {
        use std::io::Read;
        std::fs::File::open(path).ok()?.read(&mut head).ok()?
    };
    let head = String::from_utf8_lossy(&head[..n]);
    if ext == "json" {
        if head.contains("\"runId\"") && head.contains("\"suites\"") {
            return Some(Kind::RunReport);
        }
        if head.contains("\"findings\"") && head.contains("\"strategy\"") {
            return Some(Kind::Remediation);
        }
        if head.contains("\"findings\"") {
            return Some(Kind::Findings);
        }
        return None;
    }
    if !head.contains("heatcheck.dev/") {
        return None;
    }
    if name.ends_with(".lock.yaml") || name.ends_with(".lock.yml") {
        return Some(Kind::Lockfile);
    }
    head.lines()
        .any(|l| l.trim_end() == "kind: Suite")
        .then_some(Kind::Suite)
}

/// The suites and lockfiles under `root`, then the newest reports.
pub(crate) fn scan(root: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    let mut reports: Vec<(SystemTime, Found)> = Vec::new();
    let mut seen = 0usize;
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            seen += 1;
            if seen > MAX_FILES {
                break;
            }
            let name = e.file_name();
            let name = name.to_string_lossy();
            // Symlinks are not followed: what they name may be outside the root.
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if depth < MAX_DEPTH && !name.starts_with('.') && !SKIP.contains(&name.as_ref()) {
                    stack.push((e.path(), depth + 1));
                }
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let path = e.path();
            let Some(kind) = kind_of(&path) else { continue };
            let meta = e.metadata().ok();
            let f = Found {
                rel: path.strip_prefix(root).unwrap_or(&path).to_path_buf(),
                kind,
                size: meta.as_ref().map_or(0, |m| m.len()),
            };
            match kind {
                Kind::Suite | Kind::Lockfile => found.push(f),
                _ => reports.push((
                    meta.and_then(|m| m.modified().ok())
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                    f,
                )),
            }
        }
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    reports.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.rel.cmp(&b.1.rel)));
    found.extend(reports.into_iter().take(REPORTS).map(|(_, f)| f));
    found
}

/// `file://` URL of a path under the root.
pub(crate) fn uri(root: &Path, rel: &Path) -> String {
    let abs = root.join(rel);
    let mut s = String::from("file://");
    for c in abs.to_string_lossy().chars() {
        match c {
            ' ' => s.push_str("%20"),
            '%' => s.push_str("%25"),
            '#' => s.push_str("%23"),
            '?' => s.push_str("%3F"),
            c => s.push(c),
        }
    }
    s
}

/// The path a `file://` URL names (percent-decoded), or why not.
pub(crate) fn path_of(uri: &str) -> Result<PathBuf, String> {
    let Some(rest) = uri.strip_prefix("file://") else {
        return Err(format!("{uri}: not a file:// resource of this server"));
    };
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_lockfiles_and_reports_are_found_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        let suite = "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: s}\n";
        w("a/suite.yaml", suite);
        w(
            "a/suite.lock.yaml",
            "apiVersion: heatcheck.dev/v1alpha1\nkind: Lock\n",
        );
        w("a/manifests/base.yaml", "apiVersion: v1\nkind: ConfigMap\n");
        w("run.json", "{\"runId\": \"x\", \"suites\": []}");
        w("findings.json", "{\"suite\": \"s\", \"findings\": []}");
        w(
            "fixes.json",
            "{\"suite\": \"s\", \"strategy\": \"catalog\", \"findings\": []}",
        );
        w("other.json", "{\"a\": 1}");
        w(".heatcheck/runs/x/suite.yaml", suite);
        w("target/suite.yaml", suite);
        let found = scan(d.path());
        let got: Vec<(String, Kind)> = found
            .iter()
            .map(|f| (f.rel.display().to_string(), f.kind))
            .collect();
        assert_eq!(
            &got[..2],
            &[
                ("a/suite.lock.yaml".to_string(), Kind::Lockfile),
                ("a/suite.yaml".to_string(), Kind::Suite),
            ]
        );
        let mut reports: Vec<(String, Kind)> = got[2..].to_vec();
        reports.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            reports,
            vec![
                ("findings.json".to_string(), Kind::Findings),
                ("fixes.json".to_string(), Kind::Remediation),
                ("run.json".to_string(), Kind::RunReport),
            ]
        );
    }

    #[test]
    fn uris_round_trip() {
        let root = Path::new("/tmp/my root#1");
        let u = uri(root, Path::new("a/suite 100%.yaml"));
        assert_eq!(u, "file:///tmp/my%20root%231/a/suite%20100%25.yaml");
        assert_eq!(
            path_of(&u).unwrap(),
            PathBuf::from("/tmp/my root#1/a/suite 100%.yaml")
        );
        assert!(path_of("https://x/y").is_err());
    }
}
