//! Sealed blobs: any payload, any encoding byte and recorded length, sealed
//! into a real pack, then recovered through the pack's header and opened
//! with every check (AEAD, decoding, length, MAC); a delta payload is parsed
//! and decoded against a fixed base, and must never give other bytes than
//! its id names.
#![no_main]
use coffer_core::compress::Encoding;
use coffer_core::delta;
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
    let encoding = match bytes[0] % 3 {
        0 => Encoding::Raw,
        1 => Encoding::Zstd,
        _ => Encoding::Delta,
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
        bases: &[],
    })
    .expect("a pack in memory");
    let packed = w.finish().expect("a pack in memory");
    let packed = packed.body.read_all().expect("a pack in memory");
    let (salt, entries) = pack::read_header(key, &packed).expect("own header");
    let subkey = key.subkey(&salt);
    for e in entries {
        let r = e.range();
        let sealed = &packed[r.start as usize..r.end as usize];
        if encoding == Encoding::Delta {
            assert!(pack::open_blob(key, &subkey, &e, sealed).is_err());
            let (_, opened) = pack::open_payload(&subkey, &e, sealed).expect("own seal");
            if let Ok((_, frame)) = delta::parse(&opened) {
                let base = b"COPY t (a) FROM stdin;\n1\n2\n\\.\n";
                if let Ok(plain) = delta::decode(frame, &[base], raw_len as usize) {
                    assert_eq!(plain.len() as u32, raw_len);
                    if pack::verify_plain(key, &e, &plain).is_ok() {
                        assert_eq!(key.blob_id(&plain), id);
                    }
                }
            }
        } else if let Ok(plain) = pack::open_blob(key, &subkey, &e, sealed) {
            assert_eq!(plain.len() as u32, raw_len);
            assert_eq!(key.blob_id(&plain), id);
        }
    }
});
