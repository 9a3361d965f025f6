//! Criterion micro-benchmarks of the CPU stages of a backup and a restore, on
//! 16 MiB of realistic pg_dump text: chunking, the keyed blob MAC,
//! compression (levels 1 and 3), sealing, opening and decompression.
//! Run: `cargo bench -p coffer-benches` (not in CI).

use coffer_core::chunker::{Chunker, ChunkerParams};
use coffer_core::compress::{self, Encoding};
use coffer_core::crypto::MasterKey;
use coffer_e2e::{dump_like, Change};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SIZE: usize = 16 * 1024 * 1024;

fn stages(c: &mut Criterion) {
    let data = dump_like(SIZE, Change::None);
    let key = MasterKey::generate();
    let chunker = Chunker::new(ChunkerParams::DEFAULT, key.chunker_seed());
    let chunk = &data[..256 * 1024];

    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("fastcdc 64K/128K/1M", |b| {
        b.iter(|| chunker.chunk_lengths(&data, true))
    });
    g.finish();

    let mut g = c.benchmark_group("chunk 256 KiB");
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("blake3 keyed (blob id)", |b| b.iter(|| key.blob_id(chunk)));
    g.bench_function("zstd -1", |b| b.iter(|| compress::compress(chunk, 1)));
    g.bench_function("zstd -3", |b| b.iter(|| compress::compress(chunk, 3)));
    let subkey = key.subkey(&[7; 32]);
    g.bench_function("aes-256-gcm seal", |b| {
        b.iter(|| subkey.seal(&[0; 12], b"aad", chunk))
    });
    let sealed = subkey.seal(&[0; 12], b"aad", chunk);
    g.bench_function("aes-256-gcm open", |b| {
        b.iter(|| subkey.open(&[0; 12], b"aad", &sealed).unwrap())
    });
    let (enc, packed) = compress::compress(chunk, 3);
    assert_eq!(enc, Encoding::Zstd);
    g.bench_function("zstd decompress", |b| {
        b.iter(|| compress::decompress(enc, packed.clone(), chunk.len()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
