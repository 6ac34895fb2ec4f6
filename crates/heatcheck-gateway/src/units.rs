//! Human units shared by the engine's messages and the reporters (a small
//! pure module, so neither side imports the other).

use std::time::Duration;

/// Short human duration: "45ms", "1.2s", "2m05s".
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if d.as_secs() < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A latency: "0.42ms", "12ms", "1.2s" (sub-millisecond values keep a fraction).
pub fn fmt_latency(d: Duration) -> String {
    if d < Duration::from_millis(10) && !d.is_zero() {
        format!("{:.2}ms", d.as_secs_f64() * 1000.0)
    } else {
        fmt_duration(d)
    }
}
