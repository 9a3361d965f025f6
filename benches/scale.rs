//! The scale simulator: grows an existing repository to N indexed blobs and
//! M snapshots without storing N blobs, so `docs/performance.md`'s memory
//! and start-up figures can be measured at 1 M and 10 M blobs on one
//! machine in minutes (`benches/scale.sh` drives it).
//!
//! `coffer-scale REPO PASSWORD_FILE BLOBS [SNAPSHOTS] [--used]`: indexes
//! BLOBS data blobs in packs that do not exist (see
//! `coffer_core::repository::Repository::simulate_blobs`), and writes
//! SNAPSHOTS copies of the newest snapshot, one second apart. With
//! `--used`, a further snapshot (host `simulated`) uses every simulated
//! blob, and each simulated pack is created as an empty sparse file of its
//! size, so that `prune` finds everything in use and present (REPO must be
//! a local directory). The real snapshots keep restoring; the repository is
//! for measuring only.

use coffer_core::backend::Backend;
use coffer_core::Repository;

fn usage() -> ! {
    eprintln!("usage: coffer-scale REPO PASSWORD_FILE BLOBS [SNAPSHOTS] [--used]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let used = args.iter().any(|a| a == "--used");
    args.retain(|a| a != "--used");
    if args.len() < 3 || args.len() > 4 {
        usage();
    }
    let blobs: u64 = args[2].parse().unwrap_or_else(|_| usage());
    let snapshots: u64 = args
        .get(3)
        .map_or(Ok(0), |s| s.parse())
        .unwrap_or_else(|_| usage());
    let password = std::fs::read(&args[1])?;
    let password = password.strip_suffix(b"\n").unwrap_or(&password);
    let repo = Repository::open(Backend::open(&args[0], false, &[])?, password).await?;
    let started = std::time::Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let written = repo.simulate_blobs(blobs, seed).await?;
    println!(
        "indexed {blobs} simulated blobs: {} index files, {} bytes, {:.1}s",
        written.index_files,
        written.index_bytes,
        started.elapsed().as_secs_f64()
    );
    if snapshots > 0 {
        let all = repo.list_snapshots().await?;
        let newest = all
            .iter()
            .max_by_key(|(_, s)| s.time_unix_ns)
            .ok_or("the repository has no snapshot to copy")?;
        repo.simulate_snapshots(&newest.1, snapshots, 8).await?;
        println!("wrote {snapshots} snapshot copies");
    }
    if used {
        for (pack, size) in &written.packs {
            let hex = pack.to_hex();
            let dir = std::path::Path::new(&args[0]).join("data").join(&hex[..2]);
            std::fs::create_dir_all(&dir)?;
            std::fs::File::create(dir.join(&hex))?.set_len(*size)?;
        }
        repo.simulate_stream(blobs, seed, "simulated").await?;
        println!(
            "created {} sparse packs; wrote a snapshot using every simulated blob",
            written.packs.len()
        );
    }
    Ok(())
}
