//! `heatcheck prompt SUITE`: print exactly what would be sent to the model
//! (system prompt, user prompt, response schema). Calls no LLM.

use std::path::Path;

use super::generate::{connect, context_summary, prepare};
use super::{install_crypto, runtime};
use crate::cli::ClusterFlags;
use crate::error::Error;
use crate::suite::load_suite;

pub fn prompt_cmd(suite_path: &Path, cluster: &ClusterFlags) -> Result<(), Error> {
    install_crypto();
    let suite = load_suite(suite_path).map_err(Error::invalid)?;
    runtime().block_on(async move {
        let conn = connect(cluster, None).await?;
        let res = prepare(&conn.client, &suite).await;
        conn.close().await;
        let (gathered, prompt) = res?;
        let ai = suite
            .spec
            .ai
            .as_ref()
            .expect("prepare checked the ai block");
        println!(
            "# heatcheck prompt: {}/{} (no request is sent)",
            super::generate::provider_name(ai.provider),
            ai.model
        );
        println!(
            "# {}",
            context_summary(&gathered, &prompt).replace('\n', "\n# ")
        );
        println!(
            "# aiBlockHash {}  promptHash {}  contextHash {}",
            crate::ai::lockfile::ai_block_hash(ai),
            prompt.prompt_hash(),
            prompt.context_hash()
        );
        if let Some(a) = &prompt.anonymizer {
            println!(
                "# anonymized: {} names replaced by placeholders",
                a.mapping().len()
            );
        }
        println!("\n=== system ===");
        println!("{}", prompt.system.as_deref().unwrap_or("(none)"));
        println!("\n=== user ===");
        println!("{}", prompt.user);
        println!("\n=== response schema ({}) ===", prompt.schema_name);
        println!(
            "{}",
            serde_json::to_string_pretty(&prompt.schema).unwrap_or_default()
        );
        Ok(())
    })
}
