//! Human-readable sizes, times and the snapshot table.

use coffer_core::id::SnapshotId;
use coffer_core::snapshot::Snapshot;

/// 1536 -> "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The `-v` line about storage requests.
pub fn requests(r: &coffer_core::backend::counting::RequestCounts) -> String {
    format!(
        "storage requests: {} PUT, {} GET, {} HEAD, {} LIST, {} DELETE; {} up, {} down",
        r.put,
        r.get,
        r.head,
        r.list,
        r.delete,
        bytes(r.bytes_up),
        bytes(r.bytes_down)
    )
}

/// The snapshot time in this machine's time zone, to the second.
pub fn local_time(s: &Snapshot) -> String {
    let z = s.zoned_time().with_time_zone(jiff::tz::TimeZone::system());
    z.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// The `coffer snapshots` table.
pub fn snapshot_table(snaps: &[(SnapshotId, Snapshot)]) -> String {
    let header = ["ID", "Time", "Host", "Name", "Tags", "Size", "Stored"].map(String::from);
    let mut rows = vec![header.to_vec()];
    for (id, s) in snaps {
        let names: Vec<&str> = s.streams.iter().map(|x| x.name.as_str()).collect();
        rows.push(vec![
            id.short(),
            local_time(s),
            s.host.clone(),
            names.join(","),
            s.tags.join(","),
            bytes(s.size()),
            bytes(s.stored_size()),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out.push_str(&format!("{} snapshots\n", snaps.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
