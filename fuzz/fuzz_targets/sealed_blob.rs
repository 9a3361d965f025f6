//! Sealed blobs: any payload, any encoding byte and recorded length, sealed
//! into a real pack, then recovered through the pack's header and opened
//! with every check (AEAD, decoding, length, MAC).
#![no_main]
use coffer_core::compress::Encoding;
use coffer_core::pack::{self, BlobKind, EncodedBlob, PackWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((_, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    if bytes.len() < 5 {
        return;
    }
    let key = coffer_fuzz::key();
    let encoding = if bytes[0] & 1 == 0 {
        Encoding::Raw
    } else {
        Encoding::Zstd
    };
    let raw_len = u32::from_le_bytes(bytes[1..5].try_into().unwrap());
    let payload = &bytes[5..];
    // The id of the payload itself: right for raw, wrong for most frames.
    let id = key.blob_id(payload);
    let mut w = PackWriter::new(key, 1024);
    w.add(EncodedBlob {
        kind: BlobKind::Data,
        id,
        encoding,
        payload,
        raw_len,
    });
    let packed = w.finish();
    let (salt, entries) = pack::read_header(key, &packed.bytes).expect("own header");
    let subkey = key.subkey(&salt);
    for e in entries {
        let r = e.range();
        let sealed = &packed.bytes[r.start as usize..r.end as usize];
        if let Ok(plain) = pack::open_blob(key, &subkey, &e, sealed) {
            assert_eq!(plain.len() as u32, raw_len);
            assert_eq!(key.blob_id(&plain), id);
        }
    }
});
