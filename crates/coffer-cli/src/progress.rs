//! The live progress line of `backup`, on stderr, only when stderr is a
//! terminal (a CronJob's log gets the summary line alone). It reads the
//! core's counters on its own timer: streams have no known length, so it
//! shows what was read, the rate and the share already stored, and no ETA.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_core::progress::{BackupProgress, ProgressSnapshot};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::format;

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// A running progress display; dropping it clears the line.
pub struct Display {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

/// Starts drawing `progress` when stderr is a terminal and output is wanted.
/// `names` are the streams in the order they are read.
pub fn start(progress: Arc<BackupProgress>, names: Vec<String>, wanted: bool) -> Option<Display> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .expect("static template")
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
    );
    let started = Instant::now();
    let shown = bar.clone();
    let ticker = tokio::spawn(async move {
        loop {
            shown.set_message(line(&progress.get(), &names, started.elapsed()));
            shown.tick();
            tokio::time::sleep(TICK).await;
        }
    });
    Some(Display { bar, ticker })
}

impl Drop for Display {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// "app.sql: 1.2 GiB read, 95.0 MiB/s, 97.1% already stored, 12.0 MiB
/// uploaded, 0:13".
fn line(p: &ProgressSnapshot, names: &[String], elapsed: Duration) -> String {
    let name = names
        .get(p.streams_done)
        .or(names.last())
        .map(String::as_str)
        .unwrap_or("stdin");
    let secs = elapsed.as_secs_f64().max(1e-3);
    let counter = if names.len() > 1 {
        format!(
            " ({} of {})",
            (p.streams_done + 1).min(names.len()),
            names.len()
        )
    } else {
        String::new()
    };
    format!(
        "{name}{counter}: {} read, {}/s, {:.1}% already stored, {} uploaded, {}:{:02}",
        format::bytes(p.bytes_read),
        format::bytes((p.bytes_read as f64 / secs) as u64),
        p.dedup_ratio() * 100.0,
        format::bytes(p.bytes_uploaded),
        elapsed.as_secs() / 60,
        elapsed.as_secs() % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_stream_being_read_and_its_numbers() {
        let p = ProgressSnapshot {
            bytes_read: 4 << 20,
            new_bytes: 1 << 20,
            bytes_uploaded: 512 << 10,
            streams_done: 1,
        };
        let names = vec!["globals.sql".to_string(), "app.sql".to_string()];
        assert_eq!(
            line(&p, &names, Duration::from_secs(2)),
            "app.sql (2 of 2): 4.0 MiB read, 2.0 MiB/s, 75.0% already stored, 512.0 KiB uploaded, 0:02"
        );
        let one = vec!["db.sql".to_string()];
        let done = ProgressSnapshot {
            streams_done: 1,
            ..p
        };
        assert!(line(&done, &one, Duration::from_secs(61)).starts_with("db.sql: "));
        assert!(line(&done, &one, Duration::from_secs(61)).ends_with(", 1:01"));
    }
}
