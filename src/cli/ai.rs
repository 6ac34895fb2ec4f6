use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::ClusterFlags;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum VerifyArg {
    /// Run candidates on a sandbox; lock failing ones with their verdict (default).
    On,
    /// Run candidates on a sandbox; reject those whose assertions fail there.
    Strict,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    pub suite: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Skip the execution check (candidates are not run on a sandbox).
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
    /// `strict`: also reject scenarios whose assertion fails on the sandbox
    /// (by default they are locked with `sandboxVerdict: failed: ...`).
    #[arg(long, value_enum, value_name = "MODE")]
    pub verify: Option<VerifyArg>,
}

impl GenerateArgs {
    pub fn verify_mode(&self) -> crate::commands::verify::VerifyMode {
        use crate::commands::verify::VerifyMode;
        match (self.no_verify, self.verify) {
            (true, _) => VerifyMode::Off,
            (false, Some(VerifyArg::Strict)) => VerifyMode::Strict,
            _ => VerifyMode::On,
        }
    }
}

#[derive(Args, Debug)]
pub struct PromptArgs {
    pub suite: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterFlags,
}
