//! The AI side: LLM providers (and, later, context gathering, prompts, lockfiles).

pub mod provider;
