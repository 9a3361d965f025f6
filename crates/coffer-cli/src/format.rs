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

/// 9000 -> "2h30m"; 200000 -> "2d7h".
pub fn age(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
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
    let header = ["ID", "Time", "Host", "Name", "Tags", "Size", "Stored"];
    let rows = snaps.iter().map(|(id, s)| {
        let names: Vec<&str> = s.streams.iter().map(|x| x.name.as_str()).collect();
        vec![
            id.short(),
            local_time(s),
            s.host.clone(),
            names.join(","),
            s.tags.join(","),
            bytes(s.size()),
            bytes(s.stored_size()),
        ]
    });
    let mut out = table(&header, rows);
    out.push_str(&format!("{} snapshots\n", snaps.len()));
    out
}

/// The snapshot table with fewer columns (`snapshots --compact`).
pub fn snapshot_table_compact(snaps: &[(SnapshotId, Snapshot)]) -> String {
    let rows = snaps.iter().map(|(id, s)| {
        let names: Vec<&str> = s.streams.iter().map(|x| x.name.as_str()).collect();
        vec![id.short(), local_time(s), s.host.clone(), names.join(",")]
    });
    let mut out = table(&["ID", "Time", "Host", "Name"], rows);
    out.push_str(&format!("{} snapshots\n", snaps.len()));
    out
}

/// Left-aligned columns under a header and a rule.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut rows: Vec<Vec<String>> =
        std::iter::once(header.iter().map(|h| h.to_string()).collect())
            .chain(rows)
            .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter_mut().enumerate() {
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
    out
}

/// A snapshot as `snapshots --json` (and `forget --json`) print it.
pub fn snapshot_json(id: &SnapshotId, s: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": s.zoned_time().timestamp().to_string(),
        "time_local": s.zoned_time().to_string(),
        "host": s.host,
        // restic's names for the same
        "hostname": s.host,
        "username": s.user,
        "paths": s.streams.iter().map(|st| &st.name).collect::<Vec<_>>(),
        "user": s.user,
        "tags": s.tags,
        "program_version": s.program_version,
        "size": s.size(),
        "stored_size": s.stored_size(),
        "streams": s.streams.iter().map(|st| serde_json::json!({
            "name": st.name,
            "size": st.size,
            "stored_size": st.stored_size,
            "added_size": st.added_size,
            "chunks": st.chunks,
            "root": st.root.to_hex(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(age(9000), "2h30m");
        assert_eq!(age(200_000), "2d7h");
        assert_eq!(age(59), "0m");
    }
}
