//! Pack files: framing, salt, the sealed header and its entries.
#![no_main]
use coffer_core::pack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((stored, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    if stored {
        let _ = pack::read_salt(bytes);
        let _ = pack::read_header(coffer_fuzz::key(), bytes);
    } else {
        // An authenticated header's plaintext, for a pack body of any size.
        for body_end in [0, pack::PACK_PREFIX_LEN + 100, 1 << 20, usize::MAX] {
            if let Ok(entries) = pack::parse_header(bytes, body_end) {
                for e in entries {
                    assert!(e.range().end <= body_end as u64);
                }
            }
        }
    }
});
