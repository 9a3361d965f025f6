//! What the fuzz targets share: the golden fixture's master key, so that
//! the fixture's own objects (the raw seeds) authenticate and mutations of
//! them reach the decoders behind the AEAD, and the split of an input into
//! a mode byte and its bytes. Mode 0: the bytes are a stored object as read
//! from storage. Other modes: the bytes are the plaintext behind the AEAD
//! (structure-aware: the target seals or decodes them directly), since a
//! mutated ciphertext almost never authenticates.

use std::path::PathBuf;
use std::sync::OnceLock;

use coffer_core::crypto::MasterKey;
use coffer_core::keys;
use coffer_core::object::{self, ObjectType};

/// The golden fixture's folder.
pub fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/repo-v1")
}

/// The fixture's master key, unlocked once (its key file uses the fast
/// test KDF).
pub fn key() -> &'static MasterKey {
    static KEY: OnceLock<MasterKey> = OnceLock::new();
    KEY.get_or_init(|| unlock(&fixture()))
}

/// The master key of the fixture repository in `folder`.
pub fn unlock(folder: &std::path::Path) -> MasterKey {
    {
        let password = std::fs::read_to_string(folder.join("password")).expect("password");
        let keys_dir = folder.join("repo/keys");
        let entry = std::fs::read_dir(keys_dir)
            .expect("keys")
            .flatten()
            .next()
            .expect("a key file");
        let body = keys::parse(&std::fs::read(entry.path()).expect("key file")).expect("parses");
        keys::unlock(&body, password.trim_end().as_bytes())
            .expect("unlocks")
            .expect("right password")
    }
}

/// The plaintext an input stands for: in stored mode, the object opened as
/// `kind` with the fixture's key (`None` when it does not open); otherwise
/// the bytes themselves.
pub fn plaintext(stored: bool, bytes: &[u8], kind: ObjectType) -> Option<Vec<u8>> {
    if stored {
        object::open(key(), kind, bytes).ok()
    } else {
        Some(bytes.to_vec())
    }
}

/// Splits an input into its mode (0: stored bytes; else: plaintext) and
/// its bytes.
pub fn mode(data: &[u8]) -> Option<(bool, &[u8])> {
    let (&first, rest) = data.split_first()?;
    Some((first == 0, rest))
}
