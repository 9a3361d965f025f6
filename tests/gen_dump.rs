//! `gen-dump SIZE [none|scattered|clustered|day:N]`: writes a realistic pg_dump-like
//! stream of about SIZE bytes (suffixes k, M, G) to stdout, for the quickstart,
//! the golden fixture and the benchmarks.

use std::io::Write;

use coffer_e2e::{write_dump, Change};

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
        Some(day) => day
            .strip_prefix("day:")
            .and_then(|n| n.parse().ok())
            .map(Change::Day),
    };
    let (Some(size), Some(change)) = (size, change) else {
        eprintln!("usage: gen-dump SIZE[k|M|G] [none|scattered|clustered|day:N]");
        std::process::exit(2);
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    if write_dump(&mut out, size, change)
        .and_then(|()| out.flush())
        .is_err()
    {
        // A closed pipe (`gen-dump 1G | head`) is a normal end.
    }
}
