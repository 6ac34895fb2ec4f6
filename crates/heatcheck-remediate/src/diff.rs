//! Unified diffs of manifest files (`similar`: the diff insta already
//! brings into the tree, maintained, with a unified-diff writer).

use similar::TextDiff;

/// `diff -u` of one file, with `a/` and `b/` headers as git prints them;
/// empty when the texts are equal.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_shows_the_changed_line_with_context() {
        let d = unified("m.yaml", "a: 1\nb: 1\n", "a: 1\nb: 2\n");
        assert_eq!(
            d,
            "--- a/m.yaml\n+++ b/m.yaml\n@@ -1,2 +1,2 @@\n a: 1\n-b: 1\n+b: 2\n"
        );
        assert_eq!(unified("m.yaml", "x\n", "x\n"), "");
    }
}
