//! Anchors: a content-defined sample of a chunk's lines, by which a new
//! chunk finds the chunks of the previous version that hold the same rows.
//!
//! A line's key hashes its first field (the bytes before the first tab, at
//! most [`FIELD_MAX`]) and its number of tabs: for a `COPY` row that is the
//! row's first column and the table's column count, which stay the same
//! when other columns of the row change. A chunk keeps the
//! [`ANCHORS_PER_CHUNK`] smallest keys of its complete lines (a bottom-k
//! sample), so the same rows give the same anchors wherever chunk
//! boundaries fall. The chunk's first line (it may begin mid-line) and an
//! unterminated last line are skipped.

/// Anchors kept per chunk.
pub const ANCHORS_PER_CHUNK: usize = 16;

/// Bytes of a line's first field that go into its key.
pub const FIELD_MAX: usize = 64;

/// FNV-1a, 64 bits: fast on the short fields hashed here, and stable
/// across builds (anchors are stored).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The key of one complete line (without its newline).
pub fn line_key(line: &[u8]) -> u32 {
    let field_end = line.iter().position(|&b| b == b'\t').unwrap_or(line.len());
    let field = &line[..field_end.min(FIELD_MAX)];
    let tabs = line.iter().filter(|&&b| b == b'\t').count() as u64;
    let h = fnv1a(field) ^ tabs.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // Fold to 32 bits after a final mix so that both halves count.
    let h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (h >> 32) as u32
}

/// Longest label kept for a [`Mark`].
const LABEL_MAX: usize = 256;

/// Where a table's rows start or end in a plain dump, or a data block starts
/// in a custom-format one, so that a later reader can find one table's rows
/// without reading the others.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Mark {
    /// Offset of the line in its chunk.
    pub offset: u32,
    /// [`MARK_COPY`], [`MARK_END`] or [`MARK_BLOCK`].
    pub kind: u8,
    /// The line (for `COPY`, at most 256 bytes of it, lossy UTF-8).
    pub label: String,
}

/// A `COPY <table> (<columns>) FROM stdin;` line: the table's rows follow.
pub const MARK_COPY: u8 = 0;
/// A `\.` line: the rows of the current `COPY` end.
pub const MARK_END: u8 = 1;
/// A data block of a custom-format archive (`pg_dump -Fc`, uncompressed
/// with `-Z0`) starts here; the label is the block's dump id, which the
/// archive's table of contents maps to its table.
pub const MARK_BLOCK: u8 = 2;

/// Largest dump id and row length believed in a custom-format block header.
const BLOCK_FIELD_MAX: u32 = 1 << 24;

/// Custom-format data blocks starting in `chunk`. A block begins with the
/// byte 1, the dump id as pg_dump writes integers (a sign byte 0, then 4
/// bytes little-endian), then its rows, each as an integer length and the
/// row, and ends with a length of 0. Rows are text ending in a newline and
/// text never holds a zero byte, so the zero bytes of these fields are only
/// ever framing; where the chunk holds them, the first row's newline and
/// what follows it are checked too.
fn custom_blocks(chunk: &[u8], marks: &mut Vec<Mark>) {
    let int = |at: usize| -> Option<u32> {
        let b = chunk.get(at..at + 5)?;
        let v = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
        (b[0] == 0 && v < BLOCK_FIELD_MAX).then_some(v)
    };
    let mut at = 0;
    while let Some(i) = chunk[at..].iter().position(|&b| b == 1) {
        let p = at + i;
        at = p + 1;
        let (Some(dump_id @ 1..), Some(len)) = (int(p + 1), int(p + 6)) else {
            continue;
        };
        let row_end = p + 11 + len as usize;
        let whole = if len == 0 {
            // An empty table: the block ends at once, and the next block
            // (or the archive's end) follows.
            chunk.get(row_end).is_none_or(|&b| b == 1 || b == 3)
        } else {
            let row_ok = chunk.get(row_end - 1).is_none_or(|&b| b == b'\n');
            row_ok && chunk.get(row_end).is_none_or(|&b| b == 0)
        };
        if whole {
            marks.push(Mark {
                offset: p as u32,
                kind: MARK_BLOCK,
                label: dump_id.to_string(),
            });
        }
    }
}

/// What one pass over a chunk's lines finds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lines {
    /// The smallest keys of its complete lines, sorted, without repeats.
    pub anchors: Vec<u32>,
    /// Its `COPY` and end-of-data lines.
    pub marks: Vec<Mark>,
}

/// Reads a chunk's complete lines (all but the first, which may begin
/// mid-line, and an unterminated last one).
pub fn lines(chunk: &[u8]) -> Lines {
    let mut out = Lines::default();
    let Some(first_newline) = chunk.iter().position(|&b| b == b'\n') else {
        return out;
    };
    let mut start = first_newline + 1;
    while let Some(len) = chunk[start..].iter().position(|&b| b == b'\n') {
        let line = &chunk[start..start + len];
        out.anchors.push(line_key(line));
        let mark = if line.starts_with(b"COPY ") {
            Some(MARK_COPY)
        } else if line == b"\\." {
            Some(MARK_END)
        } else {
            None
        };
        if let Some(kind) = mark {
            out.marks.push(Mark {
                offset: start as u32,
                kind,
                label: String::from_utf8_lossy(&line[..line.len().min(LABEL_MAX)]).into_owned(),
            });
        }
        start += len + 1;
    }
    out.anchors.sort_unstable();
    out.anchors.dedup();
    out.anchors.truncate(ANCHORS_PER_CHUNK);
    if chunk.contains(&0) {
        custom_blocks(chunk, &mut out.marks);
        out.marks.sort_by_key(|m| m.offset);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchors(chunk: &[u8]) -> Vec<u32> {
        lines(chunk).anchors
    }

    fn rows(ids: std::ops::Range<u32>, balance: u32) -> Vec<u8> {
        ids.flat_map(|i| format!("{i}\t1\t{balance}\tfiller{i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn the_same_rows_give_the_same_anchors_whatever_else_changed() {
        let old = rows(1000..2000, 0);
        let new = rows(1000..2000, 42);
        assert_ne!(old, new);
        let a = anchors(&old);
        assert_eq!(a.len(), ANCHORS_PER_CHUNK);
        assert_eq!(a, anchors(&new));
        // Cut elsewhere: the complete lines in common still mostly agree.
        let shifted = anchors(&old[7..old.len() - 13]);
        let common = shifted.iter().filter(|k| a.contains(k)).count();
        assert!(common >= ANCHORS_PER_CHUNK - 2, "{common}");
        // Other rows, other anchors.
        let other = anchors(&rows(5000..6000, 0));
        assert!(other.iter().all(|k| !a.contains(k)));
    }

    #[test]
    fn partial_lines_and_text_without_lines_give_no_anchor() {
        assert!(anchors(b"no newline at all").is_empty());
        assert!(anchors(b"first\nunterminated").is_empty());
        assert_eq!(anchors(b"x\n1\ta\n").len(), 1);
        assert_eq!(anchors(b"x\n1\ta\n"), vec![line_key(b"1\ta")]);
        let l = lines(b"--\nCOPY public.t (a, b) FROM stdin;\n1\tx\n\\.\n");
        assert_eq!(
            l.marks,
            vec![
                Mark {
                    offset: 3,
                    kind: MARK_COPY,
                    label: "COPY public.t (a, b) FROM stdin;".into()
                },
                Mark {
                    offset: 40,
                    kind: MARK_END,
                    label: "\\.".into()
                },
            ]
        );
        // The column count is part of the key.
        assert_ne!(line_key(b"1\ta"), line_key(b"1\ta\tb"));
    }

    /// pg_dump's integer: a sign byte, then 4 bytes little-endian.
    fn pg_int(v: u32) -> Vec<u8> {
        let mut b = vec![0];
        b.extend_from_slice(&v.to_le_bytes());
        b
    }

    #[test]
    fn custom_format_data_blocks_are_marked_with_their_dump_id() {
        // The end of a block (length 0), then block 4321's first rows.
        let mut chunk = b"toc bytes\x01\x01".to_vec();
        chunk.extend(pg_int(9));
        chunk.extend_from_slice(b"1\tx\t10\n");
        chunk.extend(pg_int(0));
        let start = chunk.len();
        chunk.push(1);
        chunk.extend(pg_int(4321));
        for row in [&b"7\ty\t-3\n"[..], b"8\tz\t5\n"] {
            chunk.extend(pg_int(row.len() as u32));
            chunk.extend_from_slice(row);
        }
        let found = lines(&chunk).marks;
        assert_eq!(
            found,
            vec![Mark {
                offset: start as u32,
                kind: MARK_BLOCK,
                label: "4321".into()
            }]
        );
        // A block whose first row the chunk cuts off is still marked (its
        // header is whole); one with half a header is not, nor one whose
        // row does not end in a newline.
        assert_eq!(lines(&chunk[..start + 13]).marks.len(), 1);
        assert!(lines(&chunk[..start + 8]).marks.is_empty());
        let mut bad = chunk.clone();
        bad[start + 11 + 6] = b'x';
        assert!(lines(&bad).marks.is_empty());
        // Plain text never gives such a mark.
        assert!(lines(b"x\n\x01\t2\n").marks.is_empty());
    }

    #[test]
    fn a_real_custom_format_dump_has_a_mark_for_each_table_s_data() {
        // `pg_dump -Fc -Z0` of three tables (one empty); `pg_restore -l`
        // lists their TABLE DATA entries as dump ids 3348, 3349 and 3350.
        let dump = include_bytes!("../../tests/data/three_tables.Fc-Z0.dump");
        let found = lines(dump).marks;
        let ids: Vec<&str> = found.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(ids, ["3350", "3348", "3349"], "{found:?}");
        assert!(found.iter().all(|m| m.kind == MARK_BLOCK));
    }
}
