//! Keys and authenticated encryption: the master key material, per-object
//! subkeys, AES-256-GCM seal/open with explicit nonces, the keyed BLAKE3 blob
//! id and the Argon2id password KDF. Knows nothing of files or storage; the
//! nonce scheme is argued in `docs/security.md`.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use bincode::{Decode, Encode};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::id::BlobId;

/// Length of an AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the random salt that selects a pack's or object's subkey.
pub const SALT_LEN: usize = 32;

const SUBKEY_CONTEXT: &str = "coffer 2026-11 v1 object subkey";

/// Fills a fresh random array from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the operating system's random source failed");
    out
}

/// The repository's secret material. Random at `init`, stored only inside
/// password-encrypted key files. Wiped from memory on drop, never printed.
#[derive(Clone, Encode, Decode, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    /// Root of every encryption subkey.
    enc_key: [u8; 32],
    /// Key of the BLAKE3 MAC that names blobs.
    mac_key: [u8; 32],
    /// Seed mixed into the chunker's gear table so cut points depend on the key.
    chunker_seed: u64,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Generates new random key material.
    pub fn generate() -> Self {
        MasterKey {
            enc_key: random_bytes(),
            mac_key: random_bytes(),
            chunker_seed: u64::from_le_bytes(random_bytes()),
        }
    }

    /// The blob id of a plaintext: keyed BLAKE3, so storage shows no plain hash.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.mac_key, plaintext).as_bytes())
    }

    /// The seed for the chunker's gear table.
    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// The AEAD subkey selected by a per-pack / per-object random salt.
    pub fn subkey(&self, salt: &[u8; SALT_LEN]) -> SubKey {
        let mut material = [0u8; 64];
        material[..32].copy_from_slice(&self.enc_key);
        material[32..].copy_from_slice(salt);
        let mut key = blake3::derive_key(SUBKEY_CONTEXT, &material);
        material.zeroize();
        let cipher = Aes256Gcm::new(&key.into());
        key.zeroize();
        SubKey { cipher }
    }
}

/// An AES-256-GCM key used for one pack or one metadata object only.
pub struct SubKey {
    cipher: Aes256Gcm,
}

/// The AEAD tag did not verify: wrong key, or the bytes were altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthError;

impl SubKey {
    /// Encrypts `buf[start..]` in place and appends its tag: seals a message
    /// at the end of a growing buffer without copying it.
    pub fn seal_tail(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut Vec<u8>, start: usize) {
        let tag = self
            .cipher
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, (&mut buf[start..]).into())
            .expect("AES-GCM input below its size limit");
        buf.extend_from_slice(tag.as_slice());
    }

    /// Returns a sealed copy of `plaintext`.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        self.seal_tail(nonce, aad, &mut buf, 0);
        buf
    }

    /// Verifies and decrypts `sealed` (ciphertext followed by tag).
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, AuthError> {
        let mut buf = sealed.to_vec();
        self.cipher
            .decrypt_in_place(&Nonce::from(*nonce), aad, &mut buf)
            .map_err(|_| AuthError)?;
        Ok(buf)
    }
}

/// Argon2id cost parameters, stored in each key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// Default: 32 MiB, 8 passes, 2 lanes: the CPU time of RFC 9106's
    /// second recommendation (64 MiB, 3 passes) in half its memory, so an
    /// unlock fits a small pod beside the backup pipeline; the lanes run on
    /// two cores where there are two. Key files made with the earlier
    /// default keep their costs. See docs/security.md.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 32 * 1024,
        iterations: 8,
        parallelism: 2,
    };
    /// For tests only: cheap to derive, weak against guessing.
    pub const INSECURE_FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    /// Most memory a key file may ask for (4 GiB, the limit key files were
    /// always read with): a planted key file must not make `open` allocate
    /// without limit.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// Most passes a key file may ask for.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Most lanes a key file may ask for.
    pub const MAX_PARALLELISM: u32 = 64;
    /// Most work (memory KiB x passes) one key file may cost: 16 GiB-passes
    /// (4 GiB x 4, or 1 GiB x 16), tens of seconds; the default costs 192
    /// MiB-passes.
    pub const MAX_WORK: u64 = 16 * 1024 * 1024;

    /// The work this derivation costs (memory KiB x passes).
    pub fn work(&self) -> u64 {
        self.memory_kib as u64 * self.iterations as u64
    }

    /// Checks the parameters against the limits above (and Argon2's own).
    pub fn check(&self) -> Result<(), String> {
        let within = self.memory_kib <= Self::MAX_MEMORY_KIB
            && (1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            && (1..=Self::MAX_PARALLELISM).contains(&self.parallelism)
            && self.work() <= Self::MAX_WORK;
        if !within {
            return Err(format!(
                "Argon2 parameters ({} KiB, {} passes, {} lanes) are beyond the limits \
                 (4 GiB, 64 passes, 64 lanes, 16 GiB-passes of work)",
                self.memory_kib, self.iterations, self.parallelism
            ));
        }
        Ok(())
    }

    /// Derives a 32-byte key-encryption key from a password.
    pub fn derive(&self, password: &[u8], salt: &[u8; SALT_LEN]) -> Result<[u8; 32], String> {
        self.check()?;
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|e| format!("bad Argon2 parameters: {e}"))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(password, salt, &mut out)
            .map_err(|e| format!("Argon2 failed: {e}"))?;
        Ok(out)
    }
}

/// A key-encryption key derived from a password; used once per key file.
pub fn kek_cipher(kek: &[u8; 32]) -> SubKey {
    SubKey {
        cipher: Aes256Gcm::new(&(*kek).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kdf_parameters_are_bounded_before_any_work() {
        assert!(KdfParams::DEFAULT.check().is_ok());
        assert!(KdfParams::INSECURE_FAST.check().is_ok());
        let with = |m, i, p| KdfParams {
            memory_kib: m,
            iterations: i,
            parallelism: p,
        };
        // Whatever coffer ever wrote stays readable: up to 4 GiB.
        assert!(with(4 * 1024 * 1024, 4, 4).check().is_ok());
        for bad in [
            with(u32::MAX, 1, 1),
            with(4 * 1024 * 1024 + 1, 1, 1),
            with(64, u32::MAX, 1),
            with(64, 65, 1),
            with(64, 1, u32::MAX),
            with(4 * 1024 * 1024, 5, 1),
            with(64, 0, 1),
        ] {
            // Refused at once: no memory allocated, no passes run.
            assert!(bad.derive(b"pw", &[0; 32]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn blob_ids_depend_on_the_mac_key() {
        let (a, b) = (MasterKey::generate(), MasterKey::generate());
        assert_ne!(a.blob_id(b"same"), b.blob_id(b"same"));
        assert_eq!(a.blob_id(b"same"), a.blob_id(b"same"));
        assert_ne!(a.blob_id(b"same").0, *blake3::hash(b"same").as_bytes());
    }

    #[test]
    fn different_salts_give_unrelated_subkeys() {
        let key = MasterKey::generate();
        let sealed = key.subkey(&[1; 32]).seal(&[0; 12], b"", b"hello");
        assert!(key.subkey(&[2; 32]).open(&[0; 12], b"", &sealed).is_err());
        assert_eq!(
            key.subkey(&[1; 32]).open(&[0; 12], b"", &sealed).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn kdf_is_deterministic_and_salted() {
        let p = KdfParams::INSECURE_FAST;
        assert_eq!(p.derive(b"pw", &[1; 32]), p.derive(b"pw", &[1; 32]));
        assert_ne!(p.derive(b"pw", &[1; 32]), p.derive(b"pw", &[2; 32]));
        let huge = KdfParams {
            memory_kib: u32::MAX,
            ..p
        };
        assert!(huge.derive(b"pw", &[1; 32]).is_err());
    }

    proptest! {
        #[test]
        fn seal_open_round_trip_and_tamper(data: Vec<u8>, aad: Vec<u8>, flip in any::<usize>()) {
            let key = MasterKey::generate().subkey(&[9; 32]);
            let nonce = [3u8; 12];
            let plain = data.clone();
            let sealed = key.seal(&nonce, &aad, &data);
            prop_assert_eq!(sealed.len(), data.len() + TAG_LEN);
            prop_assert_eq!(key.open(&nonce, &aad, &sealed).unwrap(), data);
            let mut bad = sealed.clone();
            let i = flip % bad.len();
            bad[i] ^= 1;
            prop_assert!(key.open(&nonce, &aad, &bad).is_err());
            prop_assert!(key.open(&[4u8; 12], &aad, &sealed).is_err());
            let mut tail = b"prefix".to_vec();
            tail.extend_from_slice(&plain);
            key.seal_tail(&nonce, &aad, &mut tail, 6);
            prop_assert_eq!(&tail[6..], &sealed[..]);
        }
    }
}
