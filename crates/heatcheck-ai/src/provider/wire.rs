//! The provider-neutral shape of one exchange: the request, the messages,
//! the answer and the tokens it cost. Every provider module and the errors
//! build on it; it imports nothing of theirs.

use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// JSON Schema the answer must match (an object schema).
    pub schema: serde_json::Value,
    /// Names the tool / response format, e.g. "scenarios" (`^[a-zA-Z0-9_-]{1,64}$`).
    pub schema_name: String,
}

/// Tokens spent, as the provider reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    /// A provider's usage object, read with its own names for the two
    /// counts; what is missing counts as 0.
    pub(crate) fn read(u: Option<&serde_json::Value>, input: &str, output: &str) -> Usage {
        let n = |k: &str| {
            u.and_then(|u| u.get(k))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        Usage {
            input_tokens: n(input),
            output_tokens: n(output),
        }
    }
}

impl Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + o.input_tokens,
            output_tokens: self.output_tokens + o.output_tokens,
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

#[derive(Clone, Debug)]
pub struct ChatResponse {
    /// The parsed JSON answer object.
    pub value: serde_json::Value,
    /// The text (or tool input) as received.
    pub raw: String,
    pub usage: Usage,
    /// HTTP attempts made, retries included.
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_adds() {
        let mut u = Usage {
            input_tokens: 1,
            output_tokens: 2,
        };
        u += Usage {
            input_tokens: 10,
            output_tokens: 20,
        };
        assert_eq!(
            u,
            Usage {
                input_tokens: 11,
                output_tokens: 22
            }
        );
        assert_eq!(
            serde_json::to_value(u).unwrap(),
            json!({"inputTokens": 11, "outputTokens": 22})
        );
    }
}
