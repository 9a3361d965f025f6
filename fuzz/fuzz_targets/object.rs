//! The sealed envelope of `config`, index, snapshot and lock objects.
#![no_main]
use coffer_core::object::{self, ObjectType};
use libfuzzer_sys::fuzz_target;

const TYPES: [ObjectType; 5] = [
    ObjectType::Config,
    ObjectType::Index,
    ObjectType::Snapshot,
    ObjectType::IndexV2,
    ObjectType::Lock,
];

fuzz_target!(|data: &[u8]| {
    let Some((stored, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    let key = coffer_fuzz::key();
    if stored {
        let _ = object::type_byte(bytes);
        for t in TYPES {
            let _ = object::open(key, t, bytes);
        }
    } else {
        // Sealing any payload and opening it gives it back.
        let t = TYPES[bytes.len() % TYPES.len()];
        let sealed = object::seal(key, t, bytes);
        assert_eq!(object::open(key, t, &sealed).as_deref(), Ok(bytes));
    }
});
