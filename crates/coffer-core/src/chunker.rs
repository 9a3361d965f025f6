//! Content-defined cut points (FastCDC 2020, normalisation level 1) over
//! in-memory bytes, with a gear table keyed by the repository's chunker seed.
//! Pure and synchronous: bytes in, chunk lengths out; reading and buffering
//! belong to the backup pipeline.

use std::borrow::Cow;

use bincode::{Decode, Encode};
use fastcdc::v2020;

/// Chunk size bounds, recorded in the repository `config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct ChunkerParams {
    /// No cut before this many bytes.
    pub min_size: u32,
    /// Target average.
    pub avg_size: u32,
    /// Forced cut at this many bytes.
    pub max_size: u32,
}

impl ChunkerParams {
    /// 64 KiB / 128 KiB / 1 MiB. FastCDC's "average" is the normalisation
    /// target, not the mean: on pg_dump text these give a measured mean of
    /// about 228 KiB (see docs/format.md for the measurements).
    pub const DEFAULT: ChunkerParams = ChunkerParams {
        min_size: 64 * 1024,
        avg_size: 128 * 1024,
        max_size: 1024 * 1024,
    };

    /// Checks the bounds FastCDC accepts.
    pub fn validate(&self) -> Result<(), String> {
        let (min, avg, max) = (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        );
        let ok = (v2020::MINIMUM_MIN..=v2020::MINIMUM_MAX).contains(&min)
            && (v2020::AVERAGE_MIN..=v2020::AVERAGE_MAX).contains(&avg)
            && (v2020::MAXIMUM_MIN..=v2020::MAXIMUM_MAX).contains(&max)
            && min < avg
            && avg < max
            && min % 2 == 0
            && avg % 2 == 0
            && max % 2 == 0;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "chunk sizes {min}/{avg}/{max} are outside FastCDC's bounds"
            ))
        }
    }
}

/// A configured chunker: masks and keyed gear tables computed once.
pub struct Chunker {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
}

impl Chunker {
    /// Builds a chunker for validated `params` and the repository's seed.
    pub fn new(params: ChunkerParams, seed: u64) -> Self {
        let (mask_s, mask_l) =
            v2020::select_masks(params.avg_size as usize, v2020::Normalization::Level1);
        let (gear, gear_ls) = v2020::get_gear_with_seed(seed);
        Chunker {
            params,
            mask_s,
            mask_l,
            gear,
            gear_ls,
        }
    }

    /// The largest chunk this chunker emits.
    pub fn max_size(&self) -> usize {
        self.params.max_size as usize
    }

    /// Length of the next chunk at the start of `data`. When `data` holds
    /// fewer than `max_size` bytes and no cut point is found, the whole of
    /// `data` is returned: the caller decides whether that is the stream's
    /// end or needs more input.
    pub fn next_cut(&self, data: &[u8]) -> usize {
        let p = &self.params;
        let (_, len) = v2020::cut_gear(
            data,
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        len
    }

    /// Cut points for a buffer. With `at_eof == false` the trailing bytes that
    /// may still grow into a longer chunk are left out; they come back at the
    /// front of the next buffer. Returns chunk lengths in order.
    pub fn chunk_lengths(&self, data: &[u8], at_eof: bool) -> Vec<usize> {
        let mut lengths = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let rest = &data[pos..];
            let len = self.next_cut(rest);
            if len == rest.len() && !at_eof && rest.len() < self.max_size() {
                break;
            }
            lengths.push(len);
            pos += len;
        }
        lengths
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> ChunkerParams {
        ChunkerParams {
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
        }
    }

    use crate::test_noise as pseudo_random;

    /// Chunks `data` as the pipeline does, in pieces of `step` bytes.
    fn chunk_incrementally(c: &Chunker, data: &[u8], step: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut end = 0;
        while end < data.len() {
            end = (end + step).min(data.len());
            let lens = c.chunk_lengths(&data[start..end], end == data.len());
            start += lens.iter().sum::<usize>();
            out.extend(lens);
        }
        out
    }

    #[test]
    fn defaults_are_valid_and_bad_bounds_rejected() {
        ChunkerParams::DEFAULT.validate().unwrap();
        assert!(ChunkerParams {
            min_size: 10,
            ..small()
        }
        .validate()
        .is_err());
        assert!(ChunkerParams {
            min_size: 2048,
            ..small()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn an_insertion_only_changes_nearby_chunks() {
        let c = Chunker::new(small(), 42);
        let data = pseudo_random(200_000, 7);
        let mut edited = data.clone();
        edited.splice(100_000..100_000, *b"inserted!");
        let cuts = |d: &[u8]| {
            let mut pos = 0;
            c.chunk_lengths(d, true)
                .into_iter()
                .map(|l| {
                    pos += l;
                    d[pos - l..pos].to_vec()
                })
                .collect::<std::collections::HashSet<_>>()
        };
        let (a, b) = (cuts(&data), cuts(&edited));
        let new = b.difference(&a).count();
        assert!(new <= 3, "{new} chunks changed");
        assert!(a.len() > 100);
    }

    #[test]
    fn the_seed_moves_cut_points() {
        let data = pseudo_random(100_000, 3);
        let a = Chunker::new(small(), 1).chunk_lengths(&data, true);
        let b = Chunker::new(small(), 2).chunk_lengths(&data, true);
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn chunks_reassemble_and_respect_bounds(seed: u64, len in 0usize..40_000, step in 1usize..9000) {
            let c = Chunker::new(small(), seed);
            let data = pseudo_random(len, seed);
            let whole = c.chunk_lengths(&data, true);
            prop_assert_eq!(whole.iter().sum::<usize>(), data.len());
            for (i, l) in whole.iter().enumerate() {
                prop_assert!(*l <= 4096);
                prop_assert!(*l >= 256 || i == whole.len() - 1);
            }
            // Feeding the stream in arbitrary pieces gives the same cut points.
            prop_assert_eq!(chunk_incrementally(&c, &data, step), whole);
        }
    }
}
