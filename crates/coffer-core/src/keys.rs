//! Key files (`keys/<id>`): the master key sealed under a key derived from a
//! password with Argon2id. Several key files may hold the same master key,
//! one per password. Knows the file layout and the unlock step only.
//!
//! Layout: `"CFKY" | version u8 | codec(KeyFileBody)`

use bincode::{Decode, Encode};

use crate::codec;
use crate::crypto::{kek_cipher, random_bytes, KdfParams, MasterKey, NONCE_LEN, SALT_LEN};
use crate::id::{content_hash, KeyId};

/// Magic bytes of a key file.
pub const KEY_MAGIC: &[u8; 4] = b"CFKY";
/// Key file version written by this build.
pub const KEY_VERSION: u8 = 1;

/// The readable part of a key file.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct KeyFileBody {
    /// When the key was added (Unix ns).
    pub created_unix_ns: i64,
    /// Host that added it.
    pub host: String,
    /// User that added it.
    pub user: String,
    /// Argon2id costs.
    pub kdf: KdfParams,
    /// Argon2id salt.
    pub salt: [u8; SALT_LEN],
    /// AES-GCM nonce for `sealed_master`.
    pub nonce: [u8; NONCE_LEN],
    /// The sealed master key.
    pub sealed_master: Vec<u8>,
}

fn aad() -> [u8; 5] {
    let mut a = [0u8; 5];
    a[..4].copy_from_slice(KEY_MAGIC);
    a[4] = KEY_VERSION;
    a
}

/// Creates a key file for `master` opened by `password`.
pub fn create(
    master: &MasterKey,
    password: &[u8],
    kdf: KdfParams,
    host: &str,
    user: &str,
    created_unix_ns: i64,
) -> Result<(KeyId, Vec<u8>), String> {
    let salt = random_bytes();
    let nonce = random_bytes();
    let mut kek = kdf.derive(password, &salt)?;
    let mut plain = codec::encode(master).map_err(|e| format!("master key: {e}"))?;
    let sealed_master = kek_cipher(&kek).seal(&nonce, &aad(), &plain);
    zeroize::Zeroize::zeroize(&mut kek);
    zeroize::Zeroize::zeroize(&mut plain);
    let body = KeyFileBody {
        created_unix_ns,
        host: host.to_string(),
        user: user.to_string(),
        kdf,
        salt,
        nonce,
        sealed_master,
    };
    let mut bytes = aad().to_vec();
    bytes.extend_from_slice(&codec::encode(&body).map_err(|e| format!("key file: {e}"))?);
    Ok((KeyId(content_hash(&bytes)), bytes))
}

/// Parses a key file without unlocking it.
pub fn parse(bytes: &[u8]) -> Result<KeyFileBody, String> {
    if bytes.len() < 5 || &bytes[..4] != KEY_MAGIC {
        return Err("not a key file (bad magic bytes)".into());
    }
    if bytes[4] != KEY_VERSION {
        return Err(format!("unsupported key file version {}", bytes[4]));
    }
    codec::decode(&bytes[5..])
}

/// Tries `password` on a parsed key file: `Ok(None)` means a wrong password.
pub fn unlock(body: &KeyFileBody, password: &[u8]) -> Result<Option<MasterKey>, String> {
    let mut kek = body.kdf.derive(password, &body.salt)?;
    let opened = kek_cipher(&kek).open(&body.nonce, &aad(), &body.sealed_master);
    zeroize::Zeroize::zeroize(&mut kek);
    let Ok(mut plain) = opened else {
        return Ok(None);
    };
    let master = codec::decode::<MasterKey>(&plain).map_err(|e| format!("master key: {e}"));
    zeroize::Zeroize::zeroize(&mut plain);
    master.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_unlocks_wrong_one_does_not() {
        let master = MasterKey::generate();
        let (id, bytes) =
            create(&master, b"secret", KdfParams::INSECURE_FAST, "h", "u", 7).unwrap();
        assert_eq!(id, KeyId(content_hash(&bytes)));
        let body = parse(&bytes).unwrap();
        assert_eq!((body.host.as_str(), body.created_unix_ns), ("h", 7));
        let opened = unlock(&body, b"secret").unwrap().unwrap();
        assert_eq!(opened.blob_id(b"x"), master.blob_id(b"x"));
        assert!(unlock(&body, b"Secret").unwrap().is_none());
        assert!(parse(b"CFKY\x09").is_err());
    }
}
