//! Named points between write steps where tests make the process die or
//! pause, to prove crash safety by really killing processes at every step.
//!
//! Set `COFFER_FAILPOINTS` to a comma-separated list of `name=ACTION`:
//! * `kill`: abort at once (no destructors, no flushing, like `kill -9`);
//! * `sleep:SECONDS`: pause that long;
//! * `wait`: pause until the test lets the process go on (below).
//!
//! With `COFFER_FAILPOINTS_DIR` set, reaching a listed point first creates
//! the file `<dir>/<name>.reached`, so a test waits for the state it needs
//! instead of sleeping and hoping; `wait` then polls for `<dir>/<name>.resume`
//! (and gives up after two minutes, so a broken test cannot hang forever).
//! Unset (always, outside tests), a failpoint costs one check of a cached
//! empty list.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest a `wait` failpoint pauses without being resumed.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

struct Config {
    actions: Vec<(String, String)>,
    dir: Option<PathBuf>,
    skew_ns: i64,
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config {
        actions: std::env::var("COFFER_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(n, a)| (n.trim().to_string(), a.trim().to_string()))
            .collect(),
        dir: std::env::var_os("COFFER_FAILPOINTS_DIR").map(PathBuf::from),
        skew_ns: std::env::var("COFFER_TEST_CLOCK_SKEW_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map_or(0, |s| (s * 1e9) as i64),
    })
}

/// How far tests moved prune's clock ahead (0 outside tests).
pub fn clock_skew_ns() -> i64 {
    config().skew_ns
}

/// Reaches the point `name`: signals it, then dies, sleeps or waits if a
/// test asked for it.
pub fn reach(name: &str) {
    let config = config();
    for (_, action) in config.actions.iter().filter(|(n, _)| n == name) {
        if let Some(dir) = &config.dir {
            let _ = std::fs::write(dir.join(format!("{name}.reached")), b"");
        }
        if action == "kill" {
            std::process::abort();
        }
        if let Some(secs) = action.strip_prefix("sleep:").and_then(|s| s.parse().ok()) {
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        if let (Some(dir), "wait") = (&config.dir, action.as_str()) {
            let resume = dir.join(format!("{name}.resume"));
            let started = Instant::now();
            while !resume.exists()
                && started.elapsed() < WAIT_LIMIT
                && !crate::interrupt::requested()
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
