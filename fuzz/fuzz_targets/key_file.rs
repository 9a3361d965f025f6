//! Key files: parsed, their KDF parameters checked, and (when cheap enough
//! to run here) unlocked with a wrong password.
#![no_main]
use coffer_core::keys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((_, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    let Ok(body) = keys::parse(bytes) else {
        return;
    };
    // Unlocking runs Argon2: only the cheapest single-lane settings here,
    // or the run measures Argon2 rather than the parser.
    if body.kdf.check().is_ok() && body.kdf.work() <= 256 && body.kdf.parallelism == 1 {
        let _ = keys::unlock(&body, b"not the password");
    }
});
