//! Token budget: a deterministic estimate and trim. The estimate is
//! characters / 4 (rounded up): no tokenizer is shipped, and for English
//! and YAML this is within about 20% of real tokenizers, erring high.

use std::collections::BTreeMap;

use super::context::ContextItem;

/// Estimated tokens of `text` (chars / 4, rounded up).
pub(crate) fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Estimated tokens of one item as it is printed in the prompt (YAML).
pub(crate) fn item_tokens(item: &ContextItem) -> usize {
    // "- " plus the object's YAML: close to what `{{yaml context}}` prints.
    let text = serde_saphyr::to_string(&item.value).unwrap_or_default();
    estimate_tokens(&text) + 1
}

/// Estimated tokens of a list of items.
pub(crate) fn estimate_total(items: &[ContextItem]) -> usize {
    items.iter().map(item_tokens).sum()
}

/// What was dropped, per kind, in the order dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub by_kind: Vec<(String, usize)>,
}

impl Dropped {
    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    fn add(&mut self, kind: &str) {
        match self.by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => self.by_kind.push((kind.to_string(), 1)),
        }
    }

    /// `(dropped: 12 Events, 3 Services to fit the token budget)`, or "".
    pub fn note(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .by_kind
            .iter()
            .map(|(k, n)| format!("{n} {}", plural(k, *n)))
            .collect();
        format!("(dropped: {} to fit the token budget)", parts.join(", "))
    }
}

fn plural(kind: &str, n: usize) -> String {
    if n == 1 {
        kind.to_string()
    } else if kind.ends_with('s') || kind.ends_with('x') {
        format!("{kind}es")
    } else if let Some(stem) = kind.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{kind}s")
    }
}

/// Keeps items within `available` tokens: the lowest-priority group first
/// (highest `group`), and within a group the objects from the end.
/// `items` must be in prompt order (groups ascending).
pub(crate) fn trim(items: &mut Vec<ContextItem>, available: usize, dropped: &mut Dropped) {
    let costs: Vec<usize> = items.iter().map(item_tokens).collect();
    let mut total: usize = costs.iter().sum();
    if total <= available {
        return;
    }
    // Removal order: groups from the lowest priority, objects from the end.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[b].group.cmp(&items[a].group).then(b.cmp(&a)));
    let mut remove = vec![false; items.len()];
    for i in order {
        if total <= available {
            break;
        }
        remove[i] = true;
        total -= costs[i];
        dropped.add(&items[i].kind);
    }
    let mut idx = 0;
    items.retain(|_| {
        let keep = !remove[idx];
        idx += 1;
        keep
    });
}

/// Counts per kind, in first-seen order (for summaries).
pub fn count_by_kind(items: &[ContextItem]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for it in items {
        *m.entry(it.kind.clone()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn it(group: usize, kind: &str, name: &str) -> ContextItem {
        ContextItem {
            group,
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: name.into(),
            value: json!({"kind": kind, "metadata": {"name": name, "namespace": "ns"}, "spec": {"x": "y".repeat(30)}}),
        }
    }

    #[test]
    fn estimate_is_chars_over_four_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("ééééé"), 2);
    }

    #[test]
    fn trims_events_first_then_lower_groups_from_the_end() {
        let items = vec![
            it(0, "HTTPRoute", "r1"),
            it(0, "HTTPRoute", "r2"),
            it(1, "Service", "s1"),
            it(1, "Service", "s2"),
            it(1, "Service", "s3"),
            it(2, "Event", "e1"),
            it(2, "Event", "e2"),
        ];
        let one = item_tokens(&items[0]);
        // Room for exactly three objects.
        let mut kept = items.clone();
        let mut dropped = Dropped::default();
        trim(&mut kept, one * 3 + 2, &mut dropped);
        let names: Vec<&str> = kept.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["r1", "r2", "s1"]);
        assert_eq!(
            dropped.by_kind,
            [("Event".to_string(), 2), ("Service".to_string(), 2)]
        );
        assert_eq!(
            dropped.note(),
            "(dropped: 2 Events, 2 Services to fit the token budget)"
        );
        // Deterministic.
        let mut again = items.clone();
        trim(&mut again, one * 3 + 2, &mut Dropped::default());
        assert_eq!(again, kept);
        // Within budget: nothing dropped.
        let mut all = items.clone();
        let mut none = Dropped::default();
        trim(&mut all, usize::MAX, &mut none);
        assert_eq!(all.len(), 7);
        assert_eq!(none.note(), "");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural("Ingress", 2), "Ingresses");
        assert_eq!(plural("NetworkPolicy", 3), "NetworkPolicies");
        assert_eq!(plural("Service", 1), "Service");
    }
}
