use crate::exit;
use crate::suite::{scenario_schema, suite_schema};

pub fn schema(scenario: bool) -> i32 {
    let s = if scenario {
        scenario_schema()
    } else {
        suite_schema()
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&s).expect("schema serializes")
    );
    exit::SUCCESS
}
