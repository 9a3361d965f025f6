//! Pack files: sealed blobs followed by a sealed header that lists them, then
//! the header's length, so a pack can be read back (and its blobs recovered)
//! without any index. Builds and parses bytes only; uploading is elsewhere.
//!
//! Layout (see docs/format.md, "Pack files"):
//! `"CFPK" | version u8 | salt [32] | blob* | sealed header | header_len u32 LE`

use bincode::{Decode, Encode};
use bytes::Bytes;

use crate::codec;
use crate::compress::{self, Encoding};
use crate::crypto::{random_bytes, MasterKey, SubKey, NONCE_LEN, SALT_LEN, TAG_LEN};
use crate::id::{content_hash, BlobId, PackId};
use crate::index::DeltaBases;

/// Magic bytes at the start of every pack.
pub const PACK_MAGIC: &[u8; 4] = b"CFPK";
/// Pack format version written by this build.
pub const PACK_VERSION: u8 = 1;
/// Most blobs in one pack, so that its header (46 bytes an entry) stays far
/// below what a reader decodes, however small the blobs.
pub const MAX_PACK_BLOBS: usize = 1 << 20;
/// Bytes before the first blob: magic, version, salt.
pub const PACK_PREFIX_LEN: usize = 4 + 1 + SALT_LEN;
/// Nonce of the sealed header; blob nonces are offsets below 2^32 and never reach it.
const HEADER_NONCE: [u8; NONCE_LEN] = [0xff; NONCE_LEN];

/// What a blob holds. Stored as one byte; other values are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    /// A chunk of a backed-up stream.
    Data = 0,
    /// A node of a stream's chunk-list tree.
    Tree = 1,
    /// A part of a stream version's sketch (format 2; see
    /// [`crate::delta::sketch`]). Stored in tree packs: small, read at
    /// backup start.
    Sketch = 2,
}

impl BlobKind {
    /// Parses the stored byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            2 => Some(BlobKind::Sketch),
            _ => None,
        }
    }
}

/// One blob's place in a pack: listed in the pack header and in index files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct BlobEntry {
    /// [`BlobKind`] byte.
    pub kind: u8,
    /// [`Encoding`] byte.
    pub encoding: u8,
    /// Keyed MAC of the plaintext.
    pub id: BlobId,
    /// Byte offset of the sealed blob in the pack.
    pub offset: u32,
    /// Sealed length (payload + 16-byte tag).
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

impl BlobEntry {
    /// Byte range of the sealed blob inside its pack.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset as u64..self.offset as u64 + self.length as u64
    }
}

/// The AEAD nonce of the blob at `offset`: unique within a pack because
/// offsets are.
fn blob_nonce(offset: u32) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..4].copy_from_slice(&offset.to_le_bytes());
    n
}

/// Associated data binding a sealed blob to the metadata that describes it.
fn blob_aad(e: &BlobEntry) -> [u8; 38] {
    let mut aad = [0u8; 38];
    aad[0] = e.kind;
    aad[1] = e.encoding;
    aad[2..34].copy_from_slice(&e.id.0);
    aad[34..].copy_from_slice(&e.raw_length.to_le_bytes());
    aad
}

fn prefix(salt: &[u8; SALT_LEN]) -> [u8; PACK_PREFIX_LEN] {
    let mut p = [0u8; PACK_PREFIX_LEN];
    p[..4].copy_from_slice(PACK_MAGIC);
    p[4] = PACK_VERSION;
    p[5..].copy_from_slice(salt);
    p
}

#[derive(Encode, Decode)]
struct PackHeader {
    blobs: Vec<BlobEntry>,
}

/// Bytes of a pack of `blobs` blobs that are not blobs: magic, version,
/// salt, the sealed header (a `u64` count, 46 bytes an entry, the tag) and
/// its length.
pub fn pack_overhead(blobs: usize) -> u64 {
    (PACK_PREFIX_LEN + 8 + 46 * blobs + TAG_LEN + 4) as u64
}

/// A blob ready to be sealed into a pack: its payload already encoded.
#[derive(Debug, Clone, Copy)]
pub struct EncodedBlob<'a> {
    /// What it holds.
    pub kind: BlobKind,
    /// Keyed MAC of the plaintext.
    pub id: BlobId,
    /// How `payload` encodes the plaintext.
    pub encoding: Encoding,
    /// The encoded bytes.
    pub payload: &'a [u8],
    /// Plaintext length.
    pub raw_len: u32,
    /// For a delta (encoding 2), its bases as its payload names them; empty
    /// otherwise. Recorded in the index, not in the pack.
    pub bases: &'a [BlobId],
}

/// A pack being filled. Blobs are sealed as they are added.
pub struct PackWriter {
    salt: [u8; SALT_LEN],
    subkey: SubKey,
    buf: Vec<u8>,
    entries: Vec<BlobEntry>,
    bases: Vec<DeltaBases>,
}

/// A complete pack, ready to upload under `data/<id>`.
pub struct FinishedPack {
    /// Hash of `bytes`.
    pub id: PackId,
    /// Salt that selects the pack's subkey (also recorded in the index).
    pub salt: [u8; SALT_LEN],
    /// The pack file.
    pub bytes: Bytes,
    /// The blobs it holds, in order.
    pub blobs: Vec<BlobEntry>,
    /// The bases of its delta blobs.
    pub bases: Vec<DeltaBases>,
}

impl PackWriter {
    /// Starts a pack with a fresh random salt (so a fresh subkey).
    pub fn new(key: &MasterKey, capacity: usize) -> Self {
        let salt = random_bytes();
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(&prefix(&salt));
        PackWriter {
            salt,
            subkey: key.subkey(&salt),
            buf,
            entries: Vec::new(),
            bases: Vec::new(),
        }
    }

    /// Seals and appends one blob whose payload is already encoded; returns
    /// its sealed length.
    pub fn add(&mut self, blob: EncodedBlob<'_>) -> u32 {
        let EncodedBlob {
            kind,
            id,
            encoding,
            payload,
            raw_len,
            bases,
        } = blob;
        if !bases.is_empty() {
            self.bases.push(DeltaBases {
                id,
                bases: bases.to_vec(),
            });
        }
        let offset = u32::try_from(self.buf.len()).expect("packs stay below 4 GiB");
        let entry = BlobEntry {
            kind: kind as u8,
            encoding: encoding as u8,
            id,
            offset,
            length: (payload.len() + TAG_LEN) as u32,
            raw_length: raw_len,
        };
        let start = self.buf.len();
        self.buf.extend_from_slice(payload);
        self.subkey
            .seal_tail(&blob_nonce(offset), &blob_aad(&entry), &mut self.buf, start);
        self.entries.push(entry);
        entry.length
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True once the pack holds `target` bytes or [`MAX_PACK_BLOBS`] blobs.
    pub fn is_full(&self, target: usize) -> bool {
        self.buf.len() >= target || self.entries.len() >= MAX_PACK_BLOBS
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the sealed header and trailer and names the pack.
    pub fn finish(mut self) -> FinishedPack {
        // At most MAX_PACK_BLOBS entries of 46 bytes: far below the limit.
        let header = codec::encode(&PackHeader {
            blobs: self.entries.clone(),
        })
        .expect("a pack header of at most MAX_PACK_BLOBS entries encodes");
        let sealed = self
            .subkey
            .seal(&HEADER_NONCE, &prefix(&self.salt), &header);
        self.buf.extend_from_slice(&sealed);
        self.buf
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        let bytes = Bytes::from(self.buf);
        FinishedPack {
            id: PackId(content_hash(&bytes)),
            salt: self.salt,
            bytes,
            blobs: self.entries,
            bases: self.bases,
        }
    }
}

/// Reads the salt from a pack's first bytes.
pub fn read_salt(pack: &[u8]) -> Result<[u8; SALT_LEN], String> {
    if pack.len() < PACK_PREFIX_LEN + TAG_LEN + 4 {
        return Err(format!("only {} bytes, too short for a pack", pack.len()));
    }
    if &pack[..4] != PACK_MAGIC {
        return Err("not a pack (bad magic bytes)".into());
    }
    if pack[4] != PACK_VERSION {
        return Err(format!("unsupported pack version {}", pack[4]));
    }
    Ok(pack[5..PACK_PREFIX_LEN].try_into().expect("32 bytes"))
}

/// Decrypts a whole pack's header: the way to recover blobs without an index.
pub fn read_header(
    key: &MasterKey,
    pack: &[u8],
) -> Result<([u8; SALT_LEN], Vec<BlobEntry>), String> {
    let salt = read_salt(pack)?;
    let n = pack.len();
    let header_len = u32::from_le_bytes(pack[n - 4..].try_into().expect("4 bytes")) as usize;
    let end = n - 4;
    if header_len < TAG_LEN || header_len > end - PACK_PREFIX_LEN {
        return Err(format!("header length {header_len} does not fit the pack"));
    }
    let sealed = &pack[end - header_len..end];
    let plain = key
        .subkey(&salt)
        .open(&HEADER_NONCE, &prefix(&salt), sealed)
        .map_err(|_| "pack header fails authentication".to_string())?;
    Ok((salt, parse_header(&plain, end - header_len)?))
}

/// Decodes an authenticated pack header's plaintext and checks that every
/// blob it lists lies in the pack body (`PACK_PREFIX_LEN..body_end`).
pub fn parse_header(plain: &[u8], body_end: usize) -> Result<Vec<BlobEntry>, String> {
    let header: PackHeader = codec::decode(plain).map_err(|e| format!("pack header: {e}"))?;
    for b in &header.blobs {
        if b.range().end > body_end as u64 || (b.offset as usize) < PACK_PREFIX_LEN {
            return Err(format!("blob {} lies outside the pack body", b.id.short()));
        }
    }
    Ok(header.blobs)
}

/// Checks a sealed blob's AEAD tag (which binds kind, encoding, id and
/// length) and returns its encoding and payload, still encoded.
pub fn open_payload(
    subkey: &SubKey,
    entry: &BlobEntry,
    sealed: &[u8],
) -> Result<(Encoding, Vec<u8>), String> {
    let id = entry.id.short();
    let payload = subkey
        .open(&blob_nonce(entry.offset), &blob_aad(entry), sealed)
        .map_err(|_| format!("blob {id} fails authentication"))?;
    let encoding = Encoding::from_byte(entry.encoding).ok_or_else(|| {
        format!(
            "blob {id} has unknown encoding {} (written by a newer coffer?)",
            entry.encoding
        )
    })?;
    Ok((encoding, payload))
}

/// Checks that a decoded plaintext is the blob `entry` names: its length and
/// keyed MAC.
pub fn verify_plain(key: &MasterKey, entry: &BlobEntry, plain: &[u8]) -> Result<(), String> {
    let id = entry.id.short();
    if plain.len() != entry.raw_length as usize {
        return Err(format!(
            "blob {id}: decoded to {} bytes, expected {}",
            plain.len(),
            entry.raw_length
        ));
    }
    if key.blob_id(plain) != entry.id {
        return Err(format!("blob {id}: content does not match its id"));
    }
    Ok(())
}

/// Opens one sealed blob that is not a delta: checks the AEAD tag, decodes
/// the payload and checks that the plaintext's keyed MAC is the blob id.
/// Never returns wrong bytes. (Deltas need their bases: the blob reader in
/// `repository/blobs.rs` opens those.)
pub fn open_blob(
    key: &MasterKey,
    subkey: &SubKey,
    entry: &BlobEntry,
    sealed: &[u8],
) -> Result<Vec<u8>, String> {
    let (encoding, payload) = open_payload(subkey, entry, sealed)?;
    let plain = compress::decompress(encoding, payload, entry.raw_length as usize)
        .map_err(|e| format!("blob {}: {e}", entry.id.short()))?;
    verify_plain(key, entry, &plain)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_overhead_is_what_is_not_blobs() {
        let key = MasterKey::generate();
        let blobs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100 + i as usize]).collect();
        let pack = build(&key, &blobs);
        let sealed: u64 = pack.blobs.iter().map(|b| b.length as u64).sum();
        assert_eq!(pack.bytes.len() as u64, sealed + pack_overhead(5));
    }

    fn build(key: &MasterKey, blobs: &[Vec<u8>]) -> FinishedPack {
        let mut w = PackWriter::new(key, 1024);
        for b in blobs {
            let (enc, payload) = compress::compress(b, 3);
            w.add(EncodedBlob {
                bases: &[],
                kind: BlobKind::Data,
                id: key.blob_id(b),
                encoding: enc,
                payload: &payload,
                raw_len: b.len() as u32,
            });
        }
        w.finish()
    }

    #[test]
    fn flipped_bytes_are_detected_everywhere() {
        let key = MasterKey::generate();
        let pack = build(&key, &[b"one".repeat(100), b"two".to_vec()]);
        let (salt, entries) = read_header(&key, &pack.bytes).unwrap();
        let sub = key.subkey(&salt);
        for i in 0..pack.bytes.len() {
            let mut bad = pack.bytes.to_vec();
            bad[i] ^= 0x20;
            assert_ne!(PackId(content_hash(&bad)), pack.id);
            let header_ok = read_header(&key, &bad).is_ok();
            let blobs_ok = entries.iter().all(|e| {
                let r = e.range();
                open_blob(&key, &sub, e, &bad[r.start as usize..r.end as usize]).is_ok()
            });
            assert!(!(header_ok && blobs_ok), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn a_blob_cannot_be_passed_off_as_another() {
        let key = MasterKey::generate();
        let pack = build(&key, &[b"a".to_vec(), b"b".to_vec()]);
        let (salt, entries) = read_header(&key, &pack.bytes).unwrap();
        let mut swapped = entries[0];
        swapped.id = entries[1].id;
        let r = entries[0].range();
        let err = open_blob(
            &key,
            &key.subkey(&salt),
            &swapped,
            &pack.bytes[r.start as usize..r.end as usize],
        );
        assert!(err.is_err());
    }

    proptest! {
        #[test]
        fn write_then_read_without_index(blobs: Vec<Vec<u8>>) {
            let key = MasterKey::generate();
            let pack = build(&key, &blobs);
            prop_assert_eq!(PackId(content_hash(&pack.bytes)), pack.id);
            let (salt, entries) = read_header(&key, &pack.bytes).unwrap();
            prop_assert_eq!(salt, pack.salt);
            prop_assert_eq!(&entries, &pack.blobs);
            let sub = key.subkey(&salt);
            for (e, b) in entries.iter().zip(&blobs) {
                let r = e.range();
                let plain = open_blob(&key, &sub, e, &pack.bytes[r.start as usize..r.end as usize]).unwrap();
                prop_assert_eq!(&plain, b);
            }
        }
    }
}
