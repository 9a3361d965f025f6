//! The repository `config` object.
#![no_main]
use coffer_core::config::RepoConfig;
use coffer_core::object::ObjectType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((stored, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    let Some(plain) = coffer_fuzz::plaintext(stored, bytes, ObjectType::Config) else {
        return;
    };
    if let Ok(config) = RepoConfig::decode(&plain) {
        let _ = config.validate();
        // What decodes encodes back to the same bytes.
        assert_eq!(config.encode().unwrap(), plain);
    }
});
