//! zstd compression of blob payloads with the "store raw when it does not
//! shrink" rule. The chosen encoding travels with the blob (pack header and
//! index), so readers never guess.

use std::cell::RefCell;

/// How a blob's payload is encoded before encryption. Stored as one byte;
/// values not listed here are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The plaintext as is.
    Raw = 0,
    /// A single zstd frame.
    Zstd = 1,
    /// A zstd frame against base blobs (repository format 2): see
    /// [`crate::delta`]. Only the blob reader decodes it, with its bases.
    Delta = 2,
}

impl Encoding {
    /// Parses the stored byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Encoding::Raw),
            1 => Some(Encoding::Zstd),
            2 => Some(Encoding::Delta),
            _ => None,
        }
    }
}

/// Default zstd level: the best ratio per CPU second on pg_dump text here.
pub const DEFAULT_LEVEL: i32 = 3;

thread_local! {
    // One compression context per thread and level: creating a context per
    // blob costs more than compressing a small one.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Compresses `data` at `level`; returns the raw bytes when zstd does not
/// make them smaller.
pub fn compress(data: &[u8], level: i32) -> (Encoding, Vec<u8>) {
    if data.is_empty() {
        return (Encoding::Raw, Vec::new());
    }
    let compressed = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            let c = zstd::bulk::Compressor::new(level).expect("zstd context");
            *slot = Some((level, c));
        }
        let (_, c) = slot.as_mut().expect("just set");
        c.compress(data).expect("zstd compression into a Vec")
    });
    if compressed.len() < data.len() {
        (Encoding::Zstd, compressed)
    } else {
        (Encoding::Raw, data.to_vec())
    }
}

/// Largest blob plaintext coffer writes or reads: above the largest chunk
/// FastCDC cuts (16 MiB) and any tree node; a recorded length beyond it is
/// refused before anything is allocated for it.
pub const MAX_BLOB_LEN: usize = 64 * 1024 * 1024;

/// Reverses [`compress`]; `raw_len` is the recorded plaintext length and is
/// checked, so a truncated or wrong frame is an error, not short output.
pub fn decompress(encoding: Encoding, payload: Vec<u8>, raw_len: usize) -> Result<Vec<u8>, String> {
    if raw_len > MAX_BLOB_LEN {
        return Err(format!(
            "a recorded length of {raw_len} bytes is beyond any blob"
        ));
    }
    let out = match encoding {
        Encoding::Raw => payload,
        Encoding::Delta => return Err("a delta needs its bases to decode".into()),
        Encoding::Zstd => DECOMPRESSOR
            .with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = Some(zstd::bulk::Decompressor::new().expect("zstd context"));
                }
                slot.as_mut()
                    .expect("just set")
                    .decompress(&payload, raw_len)
            })
            .map_err(|e| format!("zstd frame does not decode: {e}"))?,
    };
    if out.len() != raw_len {
        return Err(format!(
            "decoded to {} bytes, expected {raw_len}",
            out.len()
        ));
    }
    Ok(out)
}

/// Largest window a delta frame may use (2^27, zstd's default decoder
/// limit): bases plus the chunk never exceed it.
const MAX_WINDOW_LOG: u32 = 27;

/// Put before the bases in the dictionary: zstd would parse a dictionary
/// that starts with its dictionary magic number as a trained dictionary, so
/// one fixed byte keeps every base raw content.
const DICT_LEAD: u8 = 0;

fn window_log(total: usize) -> u32 {
    (usize::BITS - total.max(1024).saturating_sub(1).leading_zeros()).clamp(10, MAX_WINDOW_LOG)
}

fn dictionary(bases: &[&[u8]]) -> Vec<u8> {
    let mut dict = Vec::with_capacity(1 + bases.iter().map(|b| b.len()).sum::<usize>());
    dict.push(DICT_LEAD);
    for b in bases {
        dict.extend_from_slice(b);
    }
    dict
}

fn zstd_error(code: usize) -> String {
    format!("zstd: {}", zstd::zstd_safe::get_error_name(code))
}

/// Compresses `data` as one zstd frame that may copy from `bases` (a
/// delta's base plaintexts, in order), at `level`. The window covers bases
/// and data, and long-distance matching with a hash table of at least 2^20
/// entries indexes all of the bases: with level 3's own parameters only the
/// last MiB before the data would be found.
///
/// The bases are the frame's *prefix*: referenced where they lie, indexed
/// straight into the context's own tables. (Loaded as a dictionary they
/// were copied and indexed a second time into a dictionary of their own,
/// about 4 MB a thread.) The frame is the same either way: a raw-content
/// dictionary and a prefix are both content before the frame. The context
/// lives for one frame, because a prefix borrows the bases (a kept context
/// would need them to outlive it); with it, a changed day's backup took
/// 0.76x the time of the kept context and its dictionary.
pub fn compress_against(bases: &[&[u8]], data: &[u8], level: i32) -> Result<Vec<u8>, String> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let prefix = dictionary(bases);
    let total = prefix.len() + data.len();
    if total > 1 << MAX_WINDOW_LOG {
        return Err(format!(
            "{total} bytes of bases and data exceed a delta's window"
        ));
    }
    let mut cctx = CCtx::try_create().ok_or("zstd: no memory for a context")?;
    let wlog = window_log(total);
    for p in [
        CParameter::CompressionLevel(level),
        CParameter::WindowLog(wlog),
        // Long-distance matching finds the long matches into the whole
        // prefix; the ordinary table only needs the short ones nearby.
        // Measured on three days of the 488 MB pgbench dump: 2^17 entries
        // store the same bytes as 2^20 (within 0.01%), 2^16 up to 0.6%
        // more; 2^20 cost 10 MiB more at peak on two threads. (While the
        // bases were loaded as a dictionary, the table had to cover them
        // all: 2^18 stored 1.6x the bytes.)
        CParameter::HashLog(wlog.clamp(16, 17)),
        CParameter::EnableLongDistanceMatching(true),
        CParameter::ContentSizeFlag(false),
        CParameter::ChecksumFlag(false),
    ] {
        cctx.set_parameter(p).map_err(zstd_error)?;
    }
    cctx.ref_prefix(&prefix).map_err(zstd_error)?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
    cctx.compress2(&mut out, data).map_err(zstd_error)?;
    Ok(out)
}

/// Reverses [`compress_against`] with the same `bases`; the output must be
/// exactly `raw_len` bytes.
pub fn decompress_against(
    bases: &[&[u8]],
    frame: &[u8],
    raw_len: usize,
) -> Result<Vec<u8>, String> {
    use zstd::zstd_safe::{DCtx, DParameter};
    if raw_len > MAX_BLOB_LEN {
        return Err(format!(
            "a recorded length of {raw_len} bytes is beyond any blob"
        ));
    }
    let prefix = dictionary(bases);
    let mut dctx = DCtx::try_create().ok_or("zstd: no memory for a context")?;
    dctx.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))
        .map_err(zstd_error)?;
    dctx.ref_prefix(&prefix).map_err(zstd_error)?;
    // One byte of room beyond the recorded length tells "longer" from "exact".
    let mut out = Vec::with_capacity(raw_len + 1);
    match dctx.decompress(&mut out, frame) {
        Ok(n) if n == raw_len => Ok(out),
        Ok(n) => Err(format!("decoded to {n} bytes, expected {raw_len}")),
        Err(code) => Err(format!("delta frame does not decode: {}", zstd_error(code))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn incompressible_data_is_stored_raw() {
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let random = crate::crypto::random_bytes::<4096>();
        assert_eq!(compress(&random, 3).0, Encoding::Raw);
        let text = b"INSERT INTO t VALUES (1, 'abc');\n".repeat(200);
        let (enc, out) = compress(&text, 3);
        assert_eq!(enc, Encoding::Zstd);
        assert!(out.len() < text.len() / 10);
        assert!(
            decompress(enc, out, noise.len()).is_err(),
            "wrong length must fail"
        );
    }

    #[test]
    fn a_delta_finds_its_base_across_the_whole_prefix() {
        // 3 MiB of incompressible base; the data repeats its first MiB (so
        // only a window and tables covering the whole prefix find it).
        let base = crate::test_noise(3 << 20, 1);
        let mut data = base[..1 << 20].to_vec();
        data[4096] ^= 1;
        let (a, b) = base.split_at(1 << 20);
        let frame = compress_against(&[a, b], &data, 3).unwrap();
        assert!(frame.len() < 4096, "{} bytes", frame.len());
        assert_eq!(
            decompress_against(&[a, b], &frame, data.len()).unwrap(),
            data
        );
        // Other bases, or another length, are an error, not other bytes.
        let other = vec![0u8; base.len()];
        assert!(decompress_against(&[&other], &frame, data.len()).map_or(true, |d| d != data));
        assert!(decompress_against(&[a, b], &frame, data.len() - 1).is_err());
        assert!(decompress_against(&[a, b], &frame, data.len() + 1).is_err());
        // The dictionary magic at the start of a base is still raw content.
        let mut magic = 0xEC30_A437u32.to_le_bytes().to_vec();
        magic.extend_from_slice(&data[..1000]);
        let frame = compress_against(&[&magic], &data[..1000], 3).unwrap();
        assert_eq!(
            decompress_against(&[&magic], &frame, 1000).unwrap(),
            &data[..1000]
        );
    }

    /// How deltas were compressed and decompressed before 2026-12-02: the
    /// bases loaded as a raw-content dictionary into a reused context.
    fn with_loaded_dictionary(bases: &[&[u8]], data: &[u8]) -> (Vec<u8>, Vec<u8>) {
        use zstd::zstd_safe::{CCtx, CParameter, DCtx};
        let dict = dictionary(bases);
        let mut cctx = CCtx::create();
        let wlog = window_log(dict.len() + data.len());
        for p in [
            CParameter::CompressionLevel(1),
            CParameter::WindowLog(wlog),
            CParameter::HashLog(wlog.clamp(16, 20)),
            CParameter::EnableLongDistanceMatching(true),
            CParameter::ContentSizeFlag(false),
            CParameter::ChecksumFlag(false),
            CParameter::ForceAttachDict(zstd::zstd_safe::DictAttachPref::ForceAttach),
        ] {
            cctx.set_parameter(p).unwrap();
        }
        cctx.load_dictionary(&dict).unwrap();
        let mut frame = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
        cctx.compress2(&mut frame, data).unwrap();
        let mut dctx = DCtx::create();
        dctx.load_dictionary(&dict).unwrap();
        let mut back = Vec::with_capacity(data.len() + 1);
        dctx.decompress(&mut back, &compress_against(bases, data, 1).unwrap())
            .unwrap();
        (frame, back)
    }

    #[test]
    fn deltas_read_and_write_the_same_frames_as_before_prefixes() {
        let base = crate::test_noise(2 << 20, 7);
        let mut data = base[300_000..800_000].to_vec();
        data[1000] ^= 0xff;
        let (a, b) = base.split_at(1 << 20);
        // A frame stored by an older coffer decodes with the prefix...
        let (old_frame, new_read_by_old) = with_loaded_dictionary(&[a, b], &data);
        assert!(old_frame.len() < 4096, "{} bytes", old_frame.len());
        assert_eq!(
            decompress_against(&[a, b], &old_frame, data.len()).unwrap(),
            data
        );
        // ...and an older coffer reads the frames stored now.
        assert_eq!(new_read_by_old, data);
    }

    proptest! {
        #[test]
        fn delta_round_trip(prefix: Vec<u8>, data: Vec<u8>, level in 1i32..6) {
            let frame = compress_against(&[&prefix], &data, level).unwrap();
            prop_assert_eq!(decompress_against(&[&prefix], &frame, data.len()).unwrap(), data);
        }

        #[test]
        fn round_trip(data: Vec<u8>, level in 1i32..6) {
            let (enc, out) = compress(&data, level);
            prop_assert!(out.len() <= data.len());
            prop_assert_eq!(decompress(enc, out, data.len()).unwrap(), data);
        }
    }
}
