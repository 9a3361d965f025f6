//! Check's one pass over the index for every chunk the snapshots list: the
//! first tree walk collected each chunk as a key with its length
//! ([`key_with_length`]); one pass over the blobs the index keeps, in id
//! order, finds which keys are indexed as that kind with that length, in a
//! pack that storage has, and (for deltas) with a chain that decodes. The
//! keys that fail are what the second walk names. Memory: 8 bytes a
//! distinct chunk, whatever the number of snapshots, and no lookup per
//! chunk (a lookup in the index tables costs tens of microseconds: ten
//! million of them took minutes).

use std::collections::HashSet;

use super::trees::chain_problem;
use crate::compress::Encoding;
use crate::index::{BlobMap, Kept};
use crate::repository::blobs::BlobReader;
use crate::repository::used_keys::{key_with_length, UsedKeys};

/// What the pass found.
pub(super) struct Pass {
    /// The keys (of the chunks collected) in trouble.
    pub trouble: HashSet<u64>,
    /// Which table slots the index keeps, for the listings `--read-data`
    /// makes.
    pub kept: Kept,
    /// The blobs the index keeps in each pack (by canonical number), for
    /// the report of a missing pack.
    pub blobs_per_pack: Vec<u64>,
}

/// The one pass over the index for the chunks collected in `used`. `gone`
/// lists the pack numbers storage lacks. Chains are followed by lookups,
/// only for the chunks whose kept copy is a delta. Call on a blocking
/// thread.
pub(super) fn chunks_in_trouble(
    reader: &BlobReader,
    gone: &HashSet<u32>,
    mut used: UsedKeys,
) -> Result<Pass, String> {
    used.seal();
    let index: &BlobMap = reader.index();
    let mut trouble = HashSet::new();
    let mut blobs_per_pack = vec![0u64; index.pack_count()];
    let kept = index.scan_kept(|loc| {
        blobs_per_pack[loc.pack as usize] += 1;
        let e = &loc.entry;
        let key = key_with_length(e.kind, &e.id, e.raw_length as u64);
        if !used.found(key) {
            return;
        }
        if gone.contains(&loc.pack) {
            trouble.insert(key);
        } else if let (Some(Encoding::Delta), Some(kind)) = (loc.encoding(), loc.kind()) {
            // The location lookups answer with (the scan names packs by
            // their canonical number), whose table holds the delta's row.
            let broken = match index.get(kind, &e.id) {
                Some(at) => chain_problem(reader, &at).is_some(),
                None => true,
            };
            if broken {
                trouble.insert(key);
            }
        }
    })?;
    trouble.extend(used.missing());
    Ok(Pass {
        trouble,
        kept,
        blobs_per_pack,
    })
}
