//! `gen-dump SIZE [none|scattered|clustered]`: writes a realistic pg_dump-like
//! stream of about SIZE bytes (suffixes k, M, G) to stdout, for the quickstart,
//! the golden fixture and the benchmarks.

use std::io::Write;

use coffer_e2e::{dump_like, Change};

fn parse_size(s: &str) -> Option<usize> {
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1_000),
        'm' | 'M' => (&s[..s.len() - 1], 1_000_000),
        'g' | 'G' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    num.parse::<usize>().ok().map(|n| n * mult)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size = args.get(1).and_then(|s| parse_size(s));
    let change = match args.get(2).map(String::as_str) {
        None | Some("none") => Some(Change::None),
        Some("scattered") => Some(Change::Scattered),
        Some("clustered") => Some(Change::Clustered),
        Some(_) => None,
    };
    let (Some(size), Some(change)) = (size, change) else {
        eprintln!("usage: gen-dump SIZE[k|M|G] [none|scattered|clustered]");
        std::process::exit(2);
    };
    // Generate in pieces of ~64 MB so memory stays small for huge sizes;
    // each piece restarts row ids, which keeps the output deterministic.
    let mut out = std::io::stdout().lock();
    let mut left = size;
    while left > 0 {
        let piece = left.min(64_000_000);
        let bytes = dump_like(piece, change);
        if out.write_all(&bytes[..piece.min(bytes.len())]).is_err() {
            return;
        }
        left -= piece;
    }
}
