//! The server's root: every path a tool is given must resolve (symlinks
//! followed) inside it, so an assistant cannot make heatcheck read or write
//! elsewhere on the machine.

use std::path::{Component, Path, PathBuf};

/// A canonical directory that bounds every path the tools accept.
#[derive(Clone, Debug)]
pub struct Root(PathBuf);

impl Root {
    /// `dir` canonicalized (it must exist and be a directory).
    pub fn new(dir: &Path) -> Result<Self, String> {
        let canon = dir
            .canonicalize()
            .map_err(|e| format!("--root {}: {e}", dir.display()))?;
        if !canon.is_dir() {
            return Err(format!("--root {}: not a directory", dir.display()));
        }
        Ok(Root(canon))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// An existing file or directory under the root, relative paths taken
    /// from the root. Returned relative to the root ("." for the root), as
    /// the CLI run in the root would print it.
    pub(crate) fn existing(&self, given: &str) -> Result<PathBuf, String> {
        let joined = self.0.join(given);
        let canon = joined
            .canonicalize()
            .map_err(|e| format!("{given}: {}", io_words(&e)))?;
        self.relative(given, &canon)
    }

    /// A file the tool will write: its parent must exist under the root,
    /// and the file itself, when it exists already, too (a symlink out of
    /// the root is refused like any other escape).
    pub(crate) fn writable(&self, given: &str) -> Result<PathBuf, String> {
        let joined = self.0.join(given);
        if joined.symlink_metadata().is_ok() {
            return self.existing(given);
        }
        let name = match joined.components().next_back() {
            Some(Component::Normal(n)) => n.to_owned(),
            _ => return Err(format!("{given}: not a file name")),
        };
        let parent = joined.parent().unwrap_or(&self.0);
        let canon = parent
            .canonicalize()
            .map_err(|e| format!("{given}: {}", io_words(&e)))?;
        self.relative(given, &canon.join(name))
    }

    fn relative(&self, given: &str, canon: &Path) -> Result<PathBuf, String> {
        match canon.strip_prefix(&self.0) {
            Ok(rel) if rel.as_os_str().is_empty() => Ok(PathBuf::from(".")),
            Ok(rel) => Ok(rel.to_path_buf()),
            Err(_) => Err(format!(
                "{given}: outside the server's root {} (refused)",
                self.0.display()
            )),
        }
    }
}

fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("suites")).unwrap();
        std::fs::write(dir.path().join("suites/a.yaml"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let root = Root::new(dir.path()).unwrap();

        assert_eq!(root.existing(".").unwrap(), PathBuf::from("."));
        assert_eq!(
            root.existing("suites/../suites/a.yaml").unwrap(),
            PathBuf::from("suites/a.yaml")
        );
        let abs = dir.path().join("suites/a.yaml");
        assert_eq!(
            root.existing(abs.to_str().unwrap()).unwrap(),
            PathBuf::from("suites/a.yaml")
        );
        for escape in ["..", "/etc/passwd", "link", "suites/../../"] {
            let err = root.existing(escape).unwrap_err();
            assert!(err.contains("outside the server's root"), "{escape}: {err}");
        }
        assert!(root
            .existing("nope.yaml")
            .unwrap_err()
            .contains("no such file"));

        assert_eq!(
            root.writable("suites/out.json").unwrap(),
            PathBuf::from("suites/out.json")
        );
        assert!(root.writable("link/out.json").is_err());
        assert!(root.writable("../out.json").is_err());
    }
}
