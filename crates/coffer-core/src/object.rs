//! The sealed envelope shared by the metadata objects `config`, `index/*` and
//! `snapshots/*`: a plaintext header naming the object type and version, then
//! the AES-256-GCM-sealed, optionally zstd-compressed, codec payload.
//!
//! Layout: `"CFOB" | version u8 | type u8 | salt [32] | sealed(encoding u8 | payload)`

use crate::compress::{self, Encoding};
use crate::crypto::{random_bytes, MasterKey, SALT_LEN};

/// Magic bytes of a metadata object.
pub const OBJECT_MAGIC: &[u8; 4] = b"CFOB";
/// Envelope version written by this build for every object but a format 2
/// `config`.
pub const OBJECT_VERSION: u8 = 1;
/// Envelope version of a format 2 `config`: the layout is version 1's, but
/// coffer before format 2 checks this byte first and so refuses a format 2
/// repository as newer instead of misreading it.
pub const CONFIG_V2_ENVELOPE: u8 = 2;
const HEADER_LEN: usize = 4 + 1 + 1 + SALT_LEN;
/// Metadata objects are sealed once under their own subkey, so nonce 0 is unique.
const NONCE: [u8; 12] = [0; 12];

/// The kinds of metadata object; the byte is part of the authenticated header,
/// so an index cannot be passed off as a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// The repository `config`.
    Config = 1,
    /// An `index/<id>` file without marks (read, no longer written).
    Index = 2,
    /// A `snapshots/<id>` file.
    Snapshot = 3,
    /// An `index/<id>` file with marked packs.
    IndexV2 = 4,
    /// A `locks/<id>` object.
    Lock = 5,
    /// An `index/<id>` file with delta bases (format 2).
    IndexV3 = 6,
    /// A `snapshots/<id>` file with stream sketches (format 2).
    SnapshotV2 = 7,
}

/// The type byte of an object, if it has a valid-looking header.
pub fn type_byte(bytes: &[u8]) -> Option<u8> {
    (bytes.len() > HEADER_LEN && &bytes[..4] == OBJECT_MAGIC).then(|| bytes[5])
}

/// Seals a codec payload into an object.
pub fn seal(key: &MasterKey, kind: ObjectType, payload: &[u8]) -> Vec<u8> {
    seal_envelope(key, kind, payload, OBJECT_VERSION)
}

/// Seals a codec payload into an object with the given envelope version
/// ([`OBJECT_VERSION`] or [`CONFIG_V2_ENVELOPE`]).
pub fn seal_envelope(key: &MasterKey, kind: ObjectType, payload: &[u8], version: u8) -> Vec<u8> {
    let salt: [u8; SALT_LEN] = random_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + 32);
    out.extend_from_slice(OBJECT_MAGIC);
    out.push(version);
    out.push(kind as u8);
    out.extend_from_slice(&salt);
    let (encoding, body) = compress::compress(payload, compress::DEFAULT_LEVEL);
    let mut plain = Vec::with_capacity(body.len() + 1);
    plain.push(encoding as u8);
    plain.extend_from_slice(&body);
    let sealed = key.subkey(&salt).seal(&NONCE, &out[..HEADER_LEN], &plain);
    out.extend_from_slice(&sealed);
    out
}

/// Opens an object, checking its header, type and tag; returns the payload.
pub fn open(key: &MasterKey, kind: ObjectType, bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < HEADER_LEN + 1 + crate::crypto::TAG_LEN || &bytes[..4] != OBJECT_MAGIC {
        return Err("not a coffer object (bad magic or too short)".into());
    }
    if bytes[4] != OBJECT_VERSION && bytes[4] != CONFIG_V2_ENVELOPE {
        return Err(format!("unsupported object version {}", bytes[4]));
    }
    if bytes[5] != kind as u8 {
        return Err(format!(
            "object type {} where {:?} was expected",
            bytes[5], kind
        ));
    }
    let salt: [u8; SALT_LEN] = bytes[6..HEADER_LEN].try_into().expect("32 bytes");
    let plain = key
        .subkey(&salt)
        .open(&NONCE, &bytes[..HEADER_LEN], &bytes[HEADER_LEN..])
        .map_err(|_| "fails authentication (altered, or another repository's)".to_string())?;
    let encoding =
        Encoding::from_byte(plain[0]).ok_or_else(|| format!("unknown encoding {}", plain[0]))?;
    match encoding {
        Encoding::Delta => Err("a metadata object cannot be a delta".into()),
        Encoding::Raw => Ok(plain[1..].to_vec()),
        // Bounded: no object decodes to more than a reader accepts.
        Encoding::Zstd => {
            use std::io::Read;
            let limit = crate::codec::MAX_DECODE_BYTES as u64;
            let decoder =
                zstd::stream::Decoder::new(&plain[1..]).map_err(|e| format!("zstd: {e}"))?;
            // The frame records its length (coffer's writers always do):
            // one buffer of that size, instead of doubling into up to twice
            // it (an index file of 2^18 blobs decodes to about 12 MB). One
            // byte more tells "longer than recorded" from "exact".
            let recorded = zstd::zstd_safe::get_frame_content_size(&plain[1..])
                .ok()
                .flatten()
                .filter(|&n| n <= limit);
            let mut out = Vec::with_capacity(recorded.map_or(0, |n| n as usize + 1));
            decoder
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("zstd: {e}"))?;
            if out.len() as u64 > limit {
                return Err(format!("decodes to more than {limit} bytes"));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_type_binding() {
        let key = MasterKey::generate();
        let payload = b"snapshot payload ".repeat(50);
        let sealed = seal(&key, ObjectType::Snapshot, &payload);
        assert!(sealed.len() < payload.len(), "payload is compressed");
        assert_eq!(open(&key, ObjectType::Snapshot, &sealed).unwrap(), payload);
        assert!(open(&key, ObjectType::Index, &sealed).is_err());
        let mut relabelled = sealed.clone();
        relabelled[5] = ObjectType::Index as u8;
        assert!(open(&key, ObjectType::Index, &relabelled).is_err());
        assert!(open(&MasterKey::generate(), ObjectType::Snapshot, &sealed).is_err());
    }
}
