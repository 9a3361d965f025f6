//! Retention policies for `forget`: which snapshots a `--keep-*` policy keeps
//! and why; grouping snapshots before a policy is applied and the rule that
//! a policy may not empty a group unless forced (both in [`group`]). Pure
//! decisions: the repository deletes.
//!
//! The rules are restic's `forget` (as of restic 0.14, which the end-to-end
//! tests run side by side with coffer on generated timelines): snapshots are
//! taken newest first; each `--keep-<unit> n` keeps the newest snapshot of
//! each of the `n` most recent distinct hours/days/ISO weeks/months/years
//! that hold a snapshot, counted in the snapshot's own recorded UTC offset;
//! `--keep-within D` keeps everything newer than the newest snapshot minus
//! `D`; `--keep-within-<unit> D` applies the bucket rule, uncounted, to that
//! window; `--keep-tag` keeps snapshots carrying a whole tag list. `-1` as a
//! count means "every bucket".

use std::fmt;
use std::str::FromStr;

use jiff::{civil, Timestamp, ToSpan, Zoned};
use serde::Serialize;

use crate::snapshot::Snapshot;

mod group;

pub use group::{decide, emptied_group, newest_of_groups, GroupBy, GroupKey};

/// A calendar duration as `forget` takes it: `1y5m7d2h` (years, months,
/// days, hours), applied with calendar arithmetic like restic does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duration {
    /// Years.
    pub years: i32,
    /// Months.
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Hours.
    pub hours: i32,
}

impl Duration {
    /// True when every part is zero (the rule is off).
    pub fn is_zero(&self) -> bool {
        *self == Duration::default()
    }

    /// `t` moved back by this duration. Like Go's `AddDate`, an overflowing
    /// day (March 31 minus one month) rolls over into the next month rather
    /// than being clamped, then the hours are subtracted as exact time.
    pub fn before(&self, t: &Zoned) -> Timestamp {
        let months_total = t.year() as i64 * 12 + (t.month() as i64 - 1)
            - self.months as i64
            - self.years as i64 * 12;
        let year = months_total.div_euclid(12) as i16;
        let month = (months_total.rem_euclid(12) + 1) as i8;
        let day_offset = t.day() as i64 - 1 - self.days as i64;
        let date = civil::date(year, month, 1)
            .checked_add(day_offset.days())
            .unwrap_or(civil::date(year, month, 1));
        let local = date.to_datetime(t.time());
        let moved = local
            .to_zoned(t.time_zone().clone())
            .map(|z| z.timestamp())
            .unwrap_or(t.timestamp());
        moved
            .checked_sub((self.hours as i64).hours())
            .unwrap_or(moved)
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration (expected e.g. 7d, 2y6m, 36h)".into());
        }
        let mut d = Duration::default();
        let mut seen = String::new();
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!(
                    "invalid duration {s:?}: expected a number at {rest:?} (e.g. 7d, 2y6m, 36h)"
                ));
            }
            let n: i32 = rest[..digits]
                .parse()
                .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
            let unit = rest[digits..].chars().next().ok_or_else(|| {
                format!("invalid duration {s:?}: no unit after {n} (use y, m, d or h)")
            })?;
            if seen.contains(unit) {
                return Err(format!("invalid duration {s:?}: unit {unit} given twice"));
            }
            match unit {
                'y' => d.years = n,
                'm' => d.months = n,
                'd' => d.days = n,
                'h' => d.hours = n,
                other => {
                    return Err(format!(
                    "invalid duration {s:?}: unknown unit {other:?} after {n} (use y, m, d or h)"
                ))
                }
            }
            seen.push(unit);
            rest = &rest[digits + unit.len_utf8()..];
        }
        Ok(d)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// Count of a `--keep-<unit>` rule: 0 off, -1 every bucket.
pub type KeepCount = i32;

/// A retention policy. The default keeps nothing and is rejected by
/// [`KeepPolicy::is_empty`] users: an empty policy must never mean "remove
/// everything".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    /// `--keep-last`.
    pub last: KeepCount,
    /// `--keep-hourly`.
    pub hourly: KeepCount,
    /// `--keep-daily`.
    pub daily: KeepCount,
    /// `--keep-weekly`.
    pub weekly: KeepCount,
    /// `--keep-monthly`.
    pub monthly: KeepCount,
    /// `--keep-yearly`.
    pub yearly: KeepCount,
    /// `--keep-within`.
    pub within: Duration,
    /// `--keep-within-hourly`.
    pub within_hourly: Duration,
    /// `--keep-within-daily`.
    pub within_daily: Duration,
    /// `--keep-within-weekly`.
    pub within_weekly: Duration,
    /// `--keep-within-monthly`.
    pub within_monthly: Duration,
    /// `--keep-within-yearly`.
    pub within_yearly: Duration,
    /// `--keep-tag`: each entry is a tag list a snapshot must carry whole.
    pub tags: Vec<Vec<String>>,
}

/// How many of each counted rule were left after a kept snapshot (restic's
/// `counters`; zero values are omitted in JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Remaining `--keep-last`.
    #[serde(skip_serializing_if = "is_zero")]
    pub last: i32,
    /// Remaining `--keep-hourly`.
    #[serde(skip_serializing_if = "is_zero")]
    pub hourly: i32,
    /// Remaining `--keep-daily`.
    #[serde(skip_serializing_if = "is_zero")]
    pub daily: i32,
    /// Remaining `--keep-weekly`.
    #[serde(skip_serializing_if = "is_zero")]
    pub weekly: i32,
    /// Remaining `--keep-monthly`.
    #[serde(skip_serializing_if = "is_zero")]
    pub monthly: i32,
    /// Remaining `--keep-yearly`.
    #[serde(skip_serializing_if = "is_zero")]
    pub yearly: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// The verdict on one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Position in the input slice.
    pub index: usize,
    /// Kept or removed.
    pub keep: bool,
    /// The rules that kept it (empty when removed).
    pub reasons: Vec<String>,
    /// Counters left after it (meaningful when kept).
    pub counters: Counters,
}

type Bucker = fn(&Zoned) -> i64;

fn hour_bucket(t: &Zoned) -> i64 {
    t.year() as i64 * 1_000_000 + t.month() as i64 * 10_000 + t.day() as i64 * 100 + t.hour() as i64
}
fn day_bucket(t: &Zoned) -> i64 {
    t.year() as i64 * 10_000 + t.month() as i64 * 100 + t.day() as i64
}
fn week_bucket(t: &Zoned) -> i64 {
    let w = t.date().iso_week_date();
    w.year() as i64 * 100 + w.week() as i64
}
fn month_bucket(t: &Zoned) -> i64 {
    t.year() as i64 * 100 + t.month() as i64
}
fn year_bucket(t: &Zoned) -> i64 {
    t.year() as i64
}

impl KeepPolicy {
    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        *self == KeepPolicy::default()
    }

    /// One line describing the policy, e.g. `keep 7 daily, 4 weekly snapshots`.
    pub fn describe(&self) -> String {
        let mut counted = Vec::new();
        for (n, what) in [
            (self.last, "latest"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ] {
            match n {
                -1 => counted.push(format!("all {what}")),
                n if n > 0 => counted.push(format!("{n} {what}")),
                _ => {}
            }
        }
        let mut parts = Vec::new();
        if !counted.is_empty() {
            parts.push(format!("{} snapshots", counted.join(", ")));
        }
        for (d, what) in [
            (self.within_hourly, "hourly"),
            (self.within_daily, "daily"),
            (self.within_weekly, "weekly"),
            (self.within_monthly, "monthly"),
            (self.within_yearly, "yearly"),
        ] {
            if !d.is_zero() {
                parts.push(format!("{what} snapshots within {d}"));
            }
        }
        if !self.tags.is_empty() {
            let lists: Vec<String> = self.tags.iter().map(|l| l.join(",")).collect();
            parts.push(format!("all snapshots with tags {}", lists.join(" or ")));
        }
        if !self.within.is_zero() {
            parts.push(format!(
                "all snapshots within {} of the newest",
                self.within
            ));
        }
        format!("keep {}", parts.join(", "))
    }

    /// Applies the policy to one group. Returns one decision per snapshot,
    /// newest first (ties keep input order). An empty policy keeps
    /// everything; callers are expected to refuse it before getting here.
    pub fn apply(&self, group: &[&Snapshot]) -> Vec<Decision> {
        let mut order: Vec<usize> = (0..group.len()).collect();
        order.sort_by(|&a, &b| group[b].time_unix_ns.cmp(&group[a].time_unix_ns));
        if self.is_empty() {
            return order
                .into_iter()
                .map(|index| Decision {
                    index,
                    keep: true,
                    reasons: vec!["policy is empty".into()],
                    counters: Counters::default(),
                })
                .collect();
        }
        let Some(latest) = group.iter().max_by_key(|s| s.time_unix_ns) else {
            return Vec::new();
        };
        let latest = latest.zoned_time();

        let always: Bucker = |_| 0; // replaced by the position below
        let mut counted: [(KeepCount, Bucker, Option<i64>, &str); 6] = [
            (self.last, always, None, "last snapshot"),
            (self.hourly, hour_bucket, None, "hourly snapshot"),
            (self.daily, day_bucket, None, "daily snapshot"),
            (self.weekly, week_bucket, None, "weekly snapshot"),
            (self.monthly, month_bucket, None, "monthly snapshot"),
            (self.yearly, year_bucket, None, "yearly snapshot"),
        ];
        let mut windows: [(Duration, Bucker, Option<i64>, &str); 5] = [
            (self.within_hourly, hour_bucket, None, "hourly within"),
            (self.within_daily, day_bucket, None, "daily within"),
            (self.within_weekly, week_bucket, None, "weekly within"),
            (self.within_monthly, month_bucket, None, "monthly within"),
            (self.within_yearly, year_bucket, None, "yearly within"),
        ];
        let within_start = (!self.within.is_zero()).then(|| self.within.before(&latest));
        let window_starts: Vec<Timestamp> = windows.iter().map(|w| w.0.before(&latest)).collect();

        let mut decisions = Vec::with_capacity(group.len());
        for (position, index) in order.into_iter().enumerate() {
            let snap = group[index];
            let time = snap.zoned_time();
            let mut reasons = Vec::new();
            for list in &self.tags {
                if list.iter().all(|t| snap.tags.contains(t)) {
                    reasons.push(format!("has tags [{}]", list.join(" ")));
                }
            }
            if let Some(start) = within_start {
                if time.timestamp() > start {
                    reasons.push(format!("within {}", self.within));
                }
            }
            for (i, (count, bucker, last, reason)) in counted.iter_mut().enumerate() {
                if *count > 0 || *count == -1 {
                    let value = if i == 0 {
                        position as i64
                    } else {
                        bucker(&time)
                    };
                    if Some(value) != *last {
                        *last = Some(value);
                        if *count > 0 {
                            *count -= 1;
                        }
                        reasons.push(reason.to_string());
                    }
                }
            }
            for (i, (window, bucker, last, reason)) in windows.iter_mut().enumerate() {
                if !window.is_zero() && time.timestamp() > window_starts[i] {
                    let value = bucker(&time);
                    if Some(value) != *last {
                        *last = Some(value);
                        reasons.push(format!("{reason} {window}"));
                    }
                }
            }
            let counters = Counters {
                last: counted[0].0,
                hourly: counted[1].0,
                daily: counted[2].0,
                weekly: counted[3].0,
                monthly: counted[4].0,
                yearly: counted[5].0,
            };
            decisions.push(Decision {
                index,
                keep: !reasons.is_empty(),
                reasons,
                counters,
            });
        }
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::snapshot::test_snapshot_at as at;

    fn kept(policy: &KeepPolicy, snaps: &[Snapshot]) -> Vec<usize> {
        let refs: Vec<&Snapshot> = snaps.iter().collect();
        let mut k: Vec<usize> = policy
            .apply(&refs)
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.index)
            .collect();
        k.sort();
        k
    }

    #[test]
    fn durations_parse_and_print() {
        let d: Duration = "1y5m7d2h".parse().unwrap();
        assert_eq!((d.years, d.months, d.days, d.hours), (1, 5, 7, 2));
        assert_eq!(d.to_string(), "1y5m7d2h");
        assert_eq!("2d".parse::<Duration>().unwrap().to_string(), "2d");
        for bad in ["3x", "", "d", "5", "1d2d", "-1d", "1.5d"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn month_arithmetic_rolls_over_like_go() {
        // Go: 2024-03-31 AddDate(0,-1,0) = "2024-02-31" = 2024-03-02.
        let t: Zoned = "2024-03-31T12:00:00+00:00[UTC]".parse().unwrap();
        let d = Duration {
            months: 1,
            ..Default::default()
        };
        assert_eq!(d.before(&t).to_string(), "2024-03-02T12:00:00Z");
        let d = Duration {
            days: 1,
            hours: 13,
            ..Default::default()
        };
        assert_eq!(d.before(&t).to_string(), "2024-03-29T23:00:00Z");
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day_in_the_writers_offset() {
        let snaps = [
            at("2024-01-01T10:00:00+00:00[UTC]"),
            at("2024-01-01T23:30:00+00:00[UTC]"),
            // 00:45 on Jan 2 at +01:00 is still Jan 1 in UTC: its own day counts.
            at("2024-01-02T00:45:00+01:00[+01:00]"),
            at("2024-01-03T08:00:00+00:00[UTC]"),
        ];
        let p = KeepPolicy {
            daily: 3,
            ..Default::default()
        };
        assert_eq!(kept(&p, &snaps), vec![1, 2, 3]);
        let all = KeepPolicy {
            daily: -1,
            ..Default::default()
        };
        assert_eq!(kept(&all, &snaps), vec![1, 2, 3]);
    }

    #[test]
    fn last_within_and_tags_combine() {
        let mut snaps: Vec<Snapshot> = (1..=9)
            .map(|d| at(&format!("2024-05-0{d}T12:00:00+00:00[UTC]")))
            .collect();
        snaps[0].tags = vec!["keep".into(), "x".into()];
        let p = KeepPolicy {
            last: 2,
            within: "3d".parse().unwrap(),
            tags: vec![vec!["keep".into()]],
            ..Default::default()
        };
        // within 3d of May 9 12:00: strictly after May 6 12:00.
        assert_eq!(kept(&p, &snaps), vec![0, 6, 7, 8]);
        let refs: Vec<&Snapshot> = snaps.iter().collect();
        let d = p.apply(&refs);
        assert_eq!(d[0].reasons, vec!["within 3d", "last snapshot"]);
        assert_eq!(d[0].counters.last, 1);
        assert_eq!(d.last().unwrap().reasons, vec!["has tags [keep]"]);
    }

    #[test]
    fn empty_policy_keeps_all_and_says_so() {
        let snaps = [at("2024-01-01T10:00:00+00:00[UTC]")];
        assert!(KeepPolicy::default().is_empty());
        assert_eq!(kept(&KeepPolicy::default(), &snaps), vec![0]);
    }
}
