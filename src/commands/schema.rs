use crate::error::Error;
use crate::suite::{scenario_schema, suite_schema};

pub fn schema(scenario: bool) -> Result<(), Error> {
    let s = if scenario {
        scenario_schema()
    } else {
        suite_schema()
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&s).expect("schema serializes")
    );
    Ok(())
}
