//! Editing manifest files: a file is split into its YAML documents by the
//! `---` lines, and a change rewrites only the document of the object it
//! changes (or adds a document right after the object it sits beside, or
//! drops one). Every other byte of the file stays as it was, so the diff a
//! reviewer reads is the change and nothing else.

use std::ops::Range;

use serde_json::Value;

use crate::change::{object_key, Change};

/// One document of a manifest file: where it is and what it holds.
#[derive(Clone, Debug)]
pub struct Document {
    /// Bytes of the document's text (separator lines excluded).
    pub(crate) range: Range<usize>,
    /// The object, when the document is plain YAML holding one.
    pub(crate) object: Option<Value>,
    /// The document uses templates (`{{ }}`): heatcheck does not edit it.
    pub(crate) templated: bool,
}

/// A manifest file of the suite's fixtures, as read.
#[derive(Clone, Debug)]
pub struct ManifestFile {
    /// As the suite's step wrote it (relative to the suite file).
    pub written: String,
    pub text: String,
    /// The namespace objects without one get: the apply step's, else the target's.
    pub namespace: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error("{file}: the document of {object} uses templates; heatcheck edits plain YAML only")]
    Templated { file: String, object: String },
    #[error("{object} is in no manifest file of the suite")]
    NotInFiles { object: String },
    #[error("cannot render {object} as YAML: {message}")]
    Render { object: String, message: String },
}

/// Is this line a document separator (`---`, optionally followed by a comment)?
fn separator(line: &str) -> bool {
    let l = line.trim_end_matches(['\r', '\n']);
    l == "---" || l.starts_with("--- #") || (l.starts_with("---") && l[3..].trim().is_empty())
}

/// The documents of `text`, in order, with their byte ranges.
pub fn documents(text: &str) -> Vec<Document> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if separator(line) {
            out.push(start..pos);
            start = pos + line.len();
        }
        pos += line.len();
    }
    out.push(start..text.len());
    out.into_iter()
        .map(|range| {
            let body = &text[range.clone()];
            let templated = body.contains("{{");
            let object = if templated {
                None
            } else {
                serde_saphyr::from_str::<Value>(body)
                    .ok()
                    .filter(|v| v.is_object() && v.get("kind").is_some())
            };
            Document {
                range,
                object,
                templated,
            }
        })
        .collect()
}

impl ManifestFile {
    /// `Kind/ns/name` of each object document, with its index.
    pub(crate) fn keys(&self) -> Vec<(usize, String)> {
        documents(&self.text)
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                d.object
                    .as_ref()
                    .map(|o| (i, object_key(o, &self.namespace)))
            })
            .collect()
    }

    /// Whether the file holds `key` (templated documents are looked into by name).
    pub fn holds(&self, key: &str) -> bool {
        self.keys().iter().any(|(_, k)| k == key) || self.templated_holds(key)
    }

    fn templated_holds(&self, key: &str) -> bool {
        let name = key.rsplit('/').next().unwrap_or_default();
        let kind = key.split('/').next().unwrap_or_default();
        documents(&self.text).iter().any(|d| {
            d.templated && {
                let body = &self.text[d.range.clone()];
                body.contains(&format!("kind: {kind}")) && body.contains(&format!("name: {name}"))
            }
        })
    }
}

/// The comment and blank lines a document starts with: kept when the
/// object under them is rendered again.
fn leading_comments(body: &str) -> &str {
    let mut end = 0;
    for line in body.split_inclusive('\n') {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            end += line.len();
        } else {
            break;
        }
    }
    &body[..end]
}

/// An object as a new document: the namespace the file would give it
/// anyway is not written.
fn render(object: &Value, file_ns: &str) -> Result<String, EditError> {
    let mut o = object.clone();
    let implicit = o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(file_ns);
    if implicit {
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
    }
    serde_saphyr::to_string(&o).map_err(|e| EditError::Render {
        object: object_key(object, file_ns),
        message: e.to_string(),
    })
}

/// The document's new text: edited in place when it can be (scalars where
/// they are, new keys beside their siblings), else the object rendered
/// again under the document's leading comments.
fn rewrite(old_body: &str, old: &Value, new: &Value) -> Result<String, EditError> {
    if let Some(text) = crate::scalar::edit_in_place(old_body, old, new) {
        return Ok(text);
    }
    Ok(format!(
        "{}{}",
        leading_comments(old_body),
        serde_saphyr::to_string(new).map_err(|e| EditError::Render {
            object: object_key(new, ""),
            message: e.to_string(),
        })?
    ))
}

/// Applies `changes` to `files`; the files' new texts (unchanged files are
/// returned as they were). A change to an object in no file is an error:
/// the caller decides what such objects become (server-side apply).
pub fn apply(files: &[ManifestFile], changes: &[Change]) -> Result<Vec<String>, EditError> {
    let mut texts: Vec<String> = files.iter().map(|f| f.text.clone()).collect();
    for change in changes {
        let target = change.anchor();
        let Some(fi) = files.iter().enumerate().position(|(i, f)| {
            ManifestFile {
                text: texts[i].clone(),
                ..f.clone()
            }
            .holds(target)
        }) else {
            return Err(EditError::NotInFiles {
                object: target.to_string(),
            });
        };
        let file = &files[fi];
        let current = ManifestFile {
            text: texts[fi].clone(),
            ..file.clone()
        };
        let docs = documents(&current.text);
        let Some((di, _)) = current.keys().into_iter().find(|(_, k)| k == target) else {
            return Err(EditError::Templated {
                file: file.written.clone(),
                object: target.to_string(),
            });
        };
        let doc = &docs[di];
        let body = &current.text[doc.range.clone()];
        let old = doc.object.as_ref().expect("keyed documents hold an object");
        let text = &current.text;
        texts[fi] = match change {
            Change::Set { fields, .. } => {
                let new =
                    crate::change::set_fields(old, fields).ok_or_else(|| EditError::Render {
                        object: target.to_string(),
                        message: "a field to set is not where the change expects it".into(),
                    })?;
                let new_body = rewrite(body, old, &new)?;
                format!(
                    "{}{}{}",
                    &text[..doc.range.start],
                    new_body,
                    &text[doc.range.end..]
                )
            }
            Change::Add { object, .. } => {
                // A new document right after the one it sits beside.
                let mut new_doc = String::new();
                if !body.ends_with('\n') && !body.is_empty() {
                    new_doc.push('\n');
                }
                new_doc.push_str("---\n");
                new_doc.push_str(&render(object, &file.namespace)?);
                format!(
                    "{}{}{}",
                    &text[..doc.range.end],
                    new_doc,
                    &text[doc.range.end..]
                )
            }
            Change::Remove { .. } => {
                // The document and the separator before it (or after it, for the first).
                let before = text[..doc.range.start].rfind("---");
                let (start, end) = match (before, di) {
                    (Some(s), d) if d > 0 => (s, doc.range.end),
                    _ => {
                        let next = docs.get(di + 1).map(|n| n.range.start);
                        (doc.range.start, next.unwrap_or(doc.range.end))
                    }
                };
                // Keep the comment lines in front of the object: they may
                // describe the file rather than the object.
                let keep = if di == 0 { leading_comments(body) } else { "" };
                format!("{}{}{}", &text[..start], keep, &text[end..])
            }
        };
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = "# A file comment.\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  selector: {app: a}   # flow style stays\n---\n# The deployment.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\ndata: {k: v}\n";

    fn file() -> ManifestFile {
        ManifestFile {
            written: "m.yaml".into(),
            text: FILE.into(),
            namespace: "ns".into(),
        }
    }

    #[test]
    fn documents_are_split_on_separator_lines_and_keyed_with_their_namespace() {
        let f = file();
        let keys: Vec<String> = f.keys().into_iter().map(|(_, k)| k).collect();
        assert_eq!(
            keys,
            ["Service/ns/a", "Deployment/ns/a", "ConfigMap/other/c"]
        );
        let docs = documents(FILE);
        assert_eq!(docs.len(), 3);
        assert!(FILE[docs[1].range.clone()].starts_with("# The deployment."));
    }

    #[test]
    fn a_scalar_change_edits_the_value_in_place_and_nothing_else() {
        let out = apply(
            &[file()],
            &[Change::Set {
                key: "Deployment/ns/a".into(),
                fields: vec![("/spec/replicas".into(), json!(2))],
            }],
        )
        .unwrap();
        assert_eq!(out[0], FILE.replace("replicas: 1", "replicas: 2"));
    }

    #[test]
    fn a_new_field_is_a_new_line_beside_its_siblings() {
        let out = apply(
            &[file()],
            &[Change::Set {
                key: "Deployment/ns/a".into(),
                fields: vec![(
                    "/spec/strategy".into(),
                    json!({"rollingUpdate": {"maxUnavailable": 0}}),
                )],
            }],
        )
        .unwrap();
        assert_eq!(
            out[0],
            FILE.replace(
                "  replicas: 1\n",
                "  replicas: 1\n  strategy: {rollingUpdate: {maxUnavailable: 0}}\n"
            )
        );
    }

    #[test]
    fn a_document_that_cannot_be_edited_in_place_is_rendered_again_alone() {
        let text = "# one line\n{apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {k: v}}\n---\nkind: Keep\nmetadata: {name: k}   # as it was\n";
        let f = ManifestFile {
            text: text.into(),
            ..file()
        };
        let out = apply(
            &[f],
            &[Change::Set {
                key: "ConfigMap/ns/c".into(),
                fields: vec![("/data/k2".into(), json!("w"))],
            }],
        )
        .unwrap();
        let (changed, kept) = out[0].split_once("---\n").unwrap();
        assert!(
            changed.starts_with("# one line\napiVersion: v1\n"),
            "{changed}"
        );
        assert!(changed.contains("k2: w"), "{changed}");
        assert_eq!(kept, "kind: Keep\nmetadata: {name: k}   # as it was\n");
    }

    #[test]
    fn an_added_object_follows_the_one_it_sits_beside() {
        let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "a", "namespace": "ns"}, "spec": {"maxUnavailable": 1}});
        let out = apply(
            &[file()],
            &[Change::Add {
                beside: "Deployment/ns/a".into(),
                object: pdb,
            }],
        )
        .unwrap();
        let keys: Vec<String> = ManifestFile {
            text: out[0].clone(),
            ..file()
        }
        .keys()
        .into_iter()
        .map(|(_, k)| k)
        .collect();
        assert_eq!(
            keys,
            [
                "Service/ns/a",
                "Deployment/ns/a",
                "PodDisruptionBudget/ns/a",
                "ConfigMap/other/c"
            ]
        );
        assert!(
            out[0].starts_with(&FILE[..FILE.find("---\napiVersion: v1\nkind: ConfigMap").unwrap()])
        );
        assert!(out[0].ends_with("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\ndata: {k: v}\n"));
    }

    #[test]
    fn a_removed_object_takes_its_separator_with_it() {
        let out = apply(
            &[file()],
            &[Change::Remove {
                key: "Deployment/ns/a".into(),
            }],
        )
        .unwrap();
        assert!(!out[0].contains("kind: Deployment"), "{}", out[0]);
        assert_eq!(out[0].matches("---").count(), 1, "{}", out[0]);
        let first = apply(
            &[file()],
            &[Change::Remove {
                key: "Service/ns/a".into(),
            }],
        )
        .unwrap();
        assert!(
            first[0].starts_with("# A file comment.\n# The deployment.\napiVersion: apps/v1"),
            "{}",
            first[0]
        );
    }

    #[test]
    fn templated_documents_and_unknown_objects_are_refused() {
        let t = ManifestFile {
            text: "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{vars.n}}x\n".into(),
            ..file()
        };
        let err = apply(
            &[t],
            &[Change::Remove {
                key: "Service/ns/{{vars.n}}x".into(),
            }],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                EditError::Templated { .. } | EditError::NotInFiles { .. }
            ),
            "{err}"
        );
        let err = apply(
            &[file()],
            &[Change::Remove {
                key: "Service/ns/zzz".into(),
            }],
        )
        .unwrap_err();
        assert_eq!(
            err,
            EditError::NotInFiles {
                object: "Service/ns/zzz".into()
            }
        );
    }
}
