//! Reading the model's answer: the exact JSON, or one salvaged from prose,
//! fences or a wrapper; every unreadable answer (not JSON, cut off, empty,
//! timed out) is recorded as rejected and, when there is something to
//! repair, answered with the repair text.

use serde_json::Value;

use super::backend::GenerateError;
use super::repair::{push_repair, truncated_text, unreadable_text};
use super::state::{whole, State};
use crate::answer::{normalize, salvage, Salvage};
use crate::check::shorten;
use crate::provider::{AiError, ChatResponse};

impl State<'_> {
    /// (value, raw text) of a readable answer; None when this attempt is
    /// over (rejected, and the repair or the same request goes next). Only
    /// an error that is not about the answer ends the generation.
    pub(super) fn read(
        &mut self,
        reply: Result<ChatResponse, AiError>,
        attempt: u32,
        attempts: u32,
        want: usize,
    ) -> Result<Option<(Value, String)>, GenerateError> {
        let usage = &mut self.gen.usage;
        match reply {
            Ok(resp) => {
                self.answered = true;
                usage.input_tokens += resp.usage.input_tokens;
                usage.output_tokens += resp.usage.output_tokens;
                usage.requests += resp.attempts.max(1);
                let read = normalize(resp.value.clone())
                    .map(|v| (v, Salvage::Exact))
                    .or_else(|| salvage(&resp.raw));
                if let Some((v, how)) = read {
                    if how != Salvage::Exact {
                        (self.log)(format!("attempt {attempt}: answer read {}", how.describe()));
                    }
                    return Ok(Some((v, resp.raw)));
                }
                let why = "the answer is a JSON object without a \"scenarios\" list".to_string();
                (self.log)(format!("attempt {attempt}: {why}"));
                self.rejected.push(whole(attempt, vec![why.clone()]));
                push_repair(
                    &mut self.messages,
                    Some(resp.raw),
                    unreadable_text(&why, want),
                );
                self.ask = want;
            }
            Err(AiError::NotJson {
                message,
                raw,
                usage: u,
            }) => {
                self.answered = true;
                usage.input_tokens += u.input_tokens;
                usage.output_tokens += u.output_tokens;
                usage.requests += 1;
                if let Some((v, how)) = salvage(&raw) {
                    (self.log)(format!("attempt {attempt}: answer read {}", how.describe()));
                    return Ok(Some((v, raw)));
                }
                let why = format!("not JSON: {}", shorten(&message, 200));
                (self.log)(format!("attempt {attempt}: the answer is {why}"));
                self.rejected
                    .push(whole(attempt, vec![format!("the answer is {why}")]));
                push_repair(&mut self.messages, Some(raw), unreadable_text(&why, want));
                self.ask = want;
            }
            Err(AiError::Truncated { reason, usage: u }) => {
                self.answered = true;
                usage.input_tokens += u.input_tokens;
                usage.output_tokens += u.output_tokens;
                usage.requests += 1;
                let why = format!("the answer was cut off ({reason})");
                (self.log)(format!("attempt {attempt}: {why}"));
                self.rejected.push(whole(attempt, vec![why.clone()]));
                self.ask = want.div_ceil(2);
                push_repair(&mut self.messages, None, truncated_text(&reason, self.ask));
            }
            Err(AiError::Empty) => {
                self.answered = true;
                usage.requests += 1;
                let why = "the answer was empty".to_string();
                (self.log)(format!("attempt {attempt}: {why}"));
                self.rejected.push(whole(attempt, vec![why.clone()]));
                push_repair(&mut self.messages, None, unreadable_text(&why, want));
                self.ask = want;
            }
            Err(e @ AiError::Timeout { .. }) => {
                usage.requests += 1;
                let why = format!("{e} (ai.timeout); the attempt counts against ai.maxRepairs");
                (self.log)(format!("attempt {attempt} of {attempts}: {why}"));
                self.rejected.push(whole(attempt, vec![e.to_string()]));
                self.last_timeout = Some(e);
                // The same request again: nothing was answered to repair.
            }
            Err(e) => return Err(e.into()),
        }
        Ok(None)
    }
}
