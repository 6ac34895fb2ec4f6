use std::path::Path;

use crate::error::Error;
use crate::suite::load_suite;

pub fn list(path: &Path) -> Result<(), Error> {
    let suite = load_suite(path).map_err(Error::invalid)?;
    println!("suite {} ({})", suite.metadata.name, path.display());
    if let Some(d) = &suite.metadata.description {
        println!("  {}", d.trim().replace('\n', "\n  "));
    }
    println!("target namespace: {}", suite.spec.target.namespace);
    if !suite.spec.fixtures.is_empty() {
        println!("fixtures:");
        for s in &suite.spec.fixtures {
            println!("  - {}", s.display_name());
        }
    }
    if !suite.spec.steady_state.is_empty() {
        println!("steady state:");
        for a in &suite.spec.steady_state {
            println!("  - {}", a.display_name());
        }
    }
    println!("scenarios:");
    for sc in &suite.spec.scenarios {
        println!(
            "  {} ({} steps, {} assertions)",
            sc.name,
            sc.steps.len(),
            sc.assertions.len()
        );
        if let Some(d) = &sc.description {
            println!("      {}", d.trim().replace('\n', "\n      "));
        }
    }
    Ok(())
}
