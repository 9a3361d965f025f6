//! The repository `config` object.
#![no_main]
use coffer_core::codec;
use coffer_core::config::RepoConfig;
use coffer_core::object::{self, ObjectType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((stored, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    let plain = if stored {
        match object::open(coffer_fuzz::key(), ObjectType::Config, bytes) {
            Ok(p) => p,
            Err(_) => return,
        }
    } else {
        bytes.to_vec()
    };
    if let Ok(config) = codec::decode::<RepoConfig>(&plain) {
        let _ = config.validate();
    }
});
