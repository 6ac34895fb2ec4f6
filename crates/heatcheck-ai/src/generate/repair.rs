//! What is sent back to the model when an answer needs another attempt.

use crate::lockfile::Rejected;
use crate::provider::{Message, Role};

/// The shape a repair asks for, in words a model follows.
const ANSWER_SHAPE: &str = r#"{"scenarios": [{"name": "...", "description": "...", "steps": [{"<one step kind>": {...}}], "assertions": [{"<one assertion kind>": {...}}], "metrics": ["..."], "remediation": ["..."]}]}"#;

/// The repair text for an answer that could not be read at all.
pub(super) fn unreadable_text(why: &str, want: usize) -> String {
    format!(
        "Your answer could not be read: {why}.\nAnswer ONLY with one JSON object of this shape, holding exactly {want} scenario(s), with no prose and no Markdown:\n{ANSWER_SHAPE}"
    )
}

/// The model's previous answer (when it said anything) and the next ask.
pub(super) fn push_repair(messages: &mut Vec<Message>, previous: Option<String>, text: String) {
    if let Some(raw) = previous.filter(|r| !r.trim().is_empty()) {
        messages.push(Message {
            role: Role::Assistant,
            content: raw,
        });
    }
    messages.push(Message {
        role: Role::User,
        content: text,
    });
}

/// The repair text for an answer cut off before it ended: fewer, shorter
/// scenarios.
pub(super) fn truncated_text(reason: &str, ask: usize) -> String {
    format!(
        "Your previous answer was cut off ({reason}) before it ended. Answer again with {{\"scenarios\": [...]}} holding {ask} SHORTER scenario(s): two or three steps, one or two assertions, a one-sentence description. No prose."
    )
}

/// The repair text after a checked answer: how many are accepted, what was
/// rejected and why (anonymized as the prompt was), and what to send.
pub(super) fn rejected_text(
    held_none: bool,
    accepted: usize,
    want: usize,
    pending: &[Rejected],
    anon: &dyn Fn(&str) -> String,
) -> String {
    let mut text = if held_none {
        format!("Your answer held no scenarios; {want} are needed.\n")
    } else {
        format!("{accepted} scenario(s) are accepted so far; {want} more are needed.\n")
    };
    if !pending.is_empty() {
        text.push_str("These were rejected:\n");
    }
    for r in pending {
        text.push_str(&format!("- \"{}\":\n", anon(&r.name)));
        for reason in &r.reasons {
            text.push_str(&format!("  - {}\n", anon(reason)));
        }
    }
    text.push_str(&format!(
        "Answer again with {{\"scenarios\": [...]}} holding exactly {want} new or corrected scenario(s) (not the accepted ones), following the same format and rules."
    ));
    text
}
