//! Map document paths (`spec.scenarios[2].steps[0].wait`) to source
//! positions, by walking the YAML parser's events once.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser};

/// A 1-based position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// Positions of every node (and of every mapping key) of the first document.
#[derive(Debug, Default)]
pub(crate) struct Locator {
    nodes: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    /// Every mapping: path, start, end.
    maps: Vec<(String, Pos, Pos)>,
}

/// Path of a mapping entry; keys that are not plain identifiers are quoted
/// (`expect.json["$.pod"]`) so that paths stay unambiguous.
pub(crate) fn child_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// Path of a sequence item.
pub(crate) fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        start: Pos,
    },
    Seq {
        path: String,
        next: usize,
    },
}

impl Locator {
    /// Index `text`. Stops quietly at a syntax error (the deserializer reports those).
    pub(crate) fn new(text: &str) -> Self {
        let mut loc = Locator::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut started = false;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let pos = Pos {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            let is_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::MappingStart(..)
                    | Event::SequenceStart(..)
                    | Event::Alias(..)
            );
            match event {
                Event::DocumentStart(..) if started => break,
                Event::DocumentStart(..) => started = true,
                Event::MappingEnd | Event::SequenceEnd => {
                    if let Some(Frame::Map { path, start, .. }) = stack.pop() {
                        loc.maps.push((path, start, pos));
                    }
                }
                _ => {}
            }
            if !is_node {
                continue;
            }
            // Work out this node's path; a scalar in key position is a key.
            let path = match stack.last_mut() {
                None => String::new(),
                Some(Frame::Seq { path, next }) => {
                    *next += 1;
                    child_index(path, *next - 1)
                }
                Some(Frame::Map { path, key, .. }) => match key.take() {
                    Some(k) => child_key(path, &k),
                    None => {
                        let name = match &event {
                            Event::Scalar(v, ..) => v.to_string(),
                            _ => "?".to_string(), // complex keys: not addressable
                        };
                        let key_path = child_key(path, &name);
                        loc.keys.entry(key_path).or_insert(pos);
                        *key = Some(name);
                        if matches!(event, Event::MappingStart(..) | Event::SequenceStart(..)) {
                            // Skip the complex key's content under a throwaway path.
                            stack.push(match event {
                                Event::MappingStart(..) => Frame::Map {
                                    path: "?".into(),
                                    key: None,
                                    start: pos,
                                },
                                _ => Frame::Seq {
                                    path: "?".into(),
                                    next: 0,
                                },
                            });
                        }
                        continue;
                    }
                },
            };
            loc.nodes.entry(path.clone()).or_insert(pos);
            match event {
                Event::MappingStart(..) => stack.push(Frame::Map {
                    path,
                    key: None,
                    start: pos,
                }),
                Event::SequenceStart(..) => stack.push(Frame::Seq { path, next: 0 }),
                _ => {}
            }
        }
        loc
    }

    /// Where `path` is written: its key when it is a mapping entry, else the
    /// node itself; falls back to the closest known ancestor.
    pub(crate) fn locate(&self, path: &str) -> Option<Pos> {
        self.find(path, true)
    }

    /// Path of the innermost mapping whose text contains `pos`.
    pub(crate) fn enclosing_mapping(&self, pos: Pos) -> Option<&str> {
        self.maps
            .iter()
            .filter(|(path, start, end)| *start <= pos && pos <= *end && path != "?")
            .max_by_key(|(_, start, _)| *start)
            .map(|(path, _, _)| path.as_str())
    }

    /// Like [`Self::locate`] but prefers the value over its key.
    pub(crate) fn locate_value(&self, path: &str) -> Option<Pos> {
        self.find(path, false)
    }

    fn find(&self, path: &str, key_first: bool) -> Option<Pos> {
        let mut p = path;
        loop {
            let hit = if key_first {
                self.keys.get(p).or_else(|| self.nodes.get(p))
            } else {
                self.nodes.get(p).or_else(|| self.keys.get(p))
            };
            if let Some(pos) = hit {
                return Some(*pos);
            }
            p = parent(p)?;
        }
    }
}

/// `a.b[2]` -> `a.b`, `a.b` -> `a`, `a` -> `` , `` -> None.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        // Find the `[` that opens the last segment, skipping quoted keys.
        let bytes = path.as_bytes();
        let mut in_quote = false;
        for i in (0..bytes.len()).rev() {
            match bytes[i] {
                b'"' if i == 0 || bytes[i - 1] != b'\\' => in_quote = !in_quote,
                b'[' if !in_quote => return Some(&path[..i]),
                _ => {}
            }
        }
        return Some("");
    }
    Some(path.rfind('.').map_or("", |i| &path[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
spec:
  scenarios:
    - name: a
      steps:
        - sleep: 1s
        - wait:
            kind: Pod
  expect: {\"$.pod\": 1}
";

    #[test]
    fn locates_keys_nodes_and_ancestors() {
        let l = Locator::new(DOC);
        assert_eq!(l.locate("spec.scenarios"), Some(Pos { line: 2, column: 3 }));
        assert_eq!(
            l.locate("spec.scenarios[0]"),
            Some(Pos { line: 3, column: 7 })
        );
        assert_eq!(
            l.locate("spec.scenarios[0].steps[1].wait"),
            Some(Pos {
                line: 6,
                column: 11
            })
        );
        assert_eq!(
            l.locate_value("spec.scenarios[0].steps[1].wait"),
            Some(Pos {
                line: 7,
                column: 13
            })
        );
        assert_eq!(
            l.locate_value("spec.scenarios[0].steps[0].sleep"),
            Some(Pos {
                line: 5,
                column: 18
            })
        );
        assert_eq!(
            l.locate("spec.expect[\"$.pod\"]"),
            Some(Pos {
                line: 8,
                column: 12
            })
        );
        assert_eq!(
            l.enclosing_mapping(Pos {
                line: 7,
                column: 14
            }),
            Some("spec.scenarios[0].steps[1].wait")
        );
        assert_eq!(
            l.enclosing_mapping(Pos {
                line: 5,
                column: 18
            }),
            Some("spec.scenarios[0].steps[0]")
        );
        assert_eq!(l.enclosing_mapping(Pos { line: 1, column: 1 }), Some(""));
        // Unknown leaf: nearest ancestor.
        assert_eq!(
            l.locate("spec.scenarios[0].steps[1].wait.nope"),
            Some(Pos {
                line: 6,
                column: 11
            })
        );
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent("a.b[2]"), Some("a.b"));
        assert_eq!(parent("a[\"x[1]\"]"), Some("a"));
        assert_eq!(parent("a.b"), Some("a"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
    }
}
