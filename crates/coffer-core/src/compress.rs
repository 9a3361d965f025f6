//! zstd compression of blob payloads with the "store raw when it does not
//! shrink" rule. The chosen encoding travels with the blob (pack header and
//! index), so readers never guess.

use std::cell::RefCell;

/// How a blob's payload is encoded before encryption. Stored as one byte;
/// values not listed here are reserved (2 is planned for "zstd delta against
/// a base blob").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The plaintext as is.
    Raw = 0,
    /// A single zstd frame.
    Zstd = 1,
}

impl Encoding {
    /// Parses the stored byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Encoding::Raw),
            1 => Some(Encoding::Zstd),
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

    proptest! {
        #[test]
        fn round_trip(data: Vec<u8>, level in 1i32..6) {
            let (enc, out) = compress(&data, level);
            prop_assert!(out.len() <= data.len());
            prop_assert_eq!(decompress(enc, out, data.len()).unwrap(), data);
        }
    }
}
