//! `heatcheck abort [RUN]`: the emergency stop from another terminal. It
//! drops an `abort` file in the run's directory (the run polls for it, so
//! this works from another machine sharing the state dir) and sends SIGINT
//! to the run's process when it runs here. The run then stops and restores
//! as on Ctrl-C.

use std::path::Path;

use super::runs::{inspect, status_text, Verdict};
use crate::engine::runstate::{interrupt, list_runs, Liveness, RunDir};
use crate::error::Error;

pub fn abort(run: Option<&str>, state_dir: &Path) -> Result<(), Error> {
    let targets: Vec<RunDir> = match run {
        Some(id) => {
            let d = RunDir::new(state_dir, id);
            if !d.path.is_dir() {
                return Err(Error::invalid(format!(
                    "no run {id} in {} (see `heatcheck runs`)",
                    state_dir.display()
                )));
            }
            vec![d]
        }
        None => list_runs(state_dir),
    };
    let mut told = 0;
    for dir in targets {
        let v = inspect(&dir);
        let id = dir.run_id();
        if v.verdict != Verdict::Running {
            if run.is_some() {
                stderr_line!("{id} is not running ({})", status_text(&v));
            }
            continue;
        }
        if let Err(e) = dir.request_abort("heatcheck abort") {
            stderr_line!("error: {id}: {e}");
            continue;
        }
        let mut how = vec!["abort file written".to_string()];
        if let (Some(Liveness::Alive), Ok(st)) = (v.liveness, &v.state) {
            match interrupt(st.pid) {
                Ok(()) => how.push(format!("SIGINT sent to pid {}", st.pid)),
                Err(e) => how.push(format!("SIGINT to pid {} failed: {e}", st.pid)),
            }
        }
        println!(
            "{id}: told to stop ({}); it restores the cluster and exits 4",
            how.join(", ")
        );
        told += 1;
    }
    if told == 0 {
        return Err(Error::invalid(format!(
            "no running run to stop in {}",
            state_dir.display()
        )));
    }
    Ok(())
}
