//! Named points between write steps where tests make the process die or
//! pause, to prove crash safety by really killing processes at every step.
//!
//! Set `COFFER_FAILPOINTS` to a comma-separated list of `name=kill` (abort
//! at once: no destructors, no flushing, like `kill -9`) or
//! `name=sleep:SECONDS`. Unset (always, outside tests), a failpoint costs one
//! check of a cached empty list.

use std::sync::OnceLock;

fn actions() -> &'static Vec<(String, String)> {
    static ACTIONS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    ACTIONS.get_or_init(|| {
        std::env::var("COFFER_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(n, a)| (n.trim().to_string(), a.trim().to_string()))
            .collect()
    })
}

/// Reaches the point `name`: dies or sleeps if a test asked for it.
pub fn reach(name: &str) {
    for (point, action) in actions().iter().filter(|(n, _)| n == name) {
        if action == "kill" {
            std::process::abort();
        }
        if let Some(secs) = action.strip_prefix("sleep:").and_then(|s| s.parse().ok()) {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
        }
        let _ = point;
    }
}
