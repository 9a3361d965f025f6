//! Pack files: sealed blobs followed by a sealed header that lists them, then
//! the header's length, so a pack can be read back (and its blobs recovered)
//! without any index. Builds and parses bytes only, held in memory or
//! spooled to a local file as they are sealed ([`PackBody`]); uploading is
//! elsewhere.
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

/// A spooled pack writes its sealed bytes to the file once this many are
/// buffered.
const SPOOL_FLUSH: usize = 1024 * 1024;

/// A pack being filled. Blobs are sealed as they are added; a spooled pack
/// ([`PackWriter::spooled`]) writes them on to a file, so only its last
/// MiB is in memory.
pub struct PackWriter {
    salt: [u8; SALT_LEN],
    subkey: SubKey,
    /// Bytes not written to the spool yet (all of them without a spool).
    buf: Vec<u8>,
    /// Bytes before `buf`, already in the spool.
    spooled: u64,
    spool: Option<Spool>,
    entries: Vec<BlobEntry>,
    bases: Vec<DeltaBases>,
}

/// Where a spooled pack's bytes go, hashed on the way for its name.
struct Spool {
    file: std::fs::File,
    hash: blake3::Hasher,
}

/// A finished pack's bytes.
pub enum PackBody {
    /// In memory.
    Memory(Bytes),
    /// In an unnamed local file (gone once closed, or if the process dies).
    Spooled {
        /// The file, `len` bytes.
        file: std::fs::File,
        /// Its length.
        len: u64,
    },
}

impl PackBody {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            PackBody::Memory(b) => b.len() as u64,
            PackBody::Spooled { len, .. } => *len,
        }
    }

    /// True when empty (never, for a finished pack).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of `range` (which must lie within the body).
    pub fn read_range(&self, range: std::ops::Range<u64>) -> std::io::Result<Bytes> {
        match self {
            PackBody::Memory(b) => b
                .get(range.start as usize..range.end as usize)
                .map(|r| b.slice_ref(r))
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            PackBody::Spooled { file, .. } => {
                use std::os::unix::fs::FileExt;
                let mut out = vec![0; (range.end - range.start) as usize];
                file.read_exact_at(&mut out, range.start)?;
                Ok(Bytes::from(out))
            }
        }
    }

    /// All of it, in memory.
    pub fn read_all(&self) -> std::io::Result<Bytes> {
        self.read_range(0..self.len())
    }

    /// A second handle on the same bytes (a spooled body shares its file).
    pub fn try_clone(&self) -> std::io::Result<PackBody> {
        Ok(match self {
            PackBody::Memory(b) => PackBody::Memory(b.clone()),
            PackBody::Spooled { file, len } => PackBody::Spooled {
                file: file.try_clone()?,
                len: *len,
            },
        })
    }
}

/// A complete pack, ready to upload under `data/<id>`.
pub struct FinishedPack {
    /// Hash of its bytes.
    pub id: PackId,
    /// Salt that selects the pack's subkey (also recorded in the index).
    pub salt: [u8; SALT_LEN],
    /// The pack file.
    pub body: PackBody,
    /// The blobs it holds, in order.
    pub blobs: Vec<BlobEntry>,
    /// The bases of its delta blobs.
    pub bases: Vec<DeltaBases>,
}

impl PackWriter {
    /// Starts a pack in memory with a fresh random salt (so a fresh
    /// subkey).
    pub fn new(key: &MasterKey, capacity: usize) -> Self {
        let salt = random_bytes();
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(&prefix(&salt));
        PackWriter {
            salt,
            subkey: key.subkey(&salt),
            buf,
            spooled: 0,
            spool: None,
            entries: Vec::new(),
            bases: Vec::new(),
        }
    }

    /// Starts a pack spooled to an unnamed file in `dir`: nothing is left
    /// behind however the process ends.
    pub fn spooled(key: &MasterKey, dir: &std::path::Path) -> std::io::Result<Self> {
        let file = tempfile::tempfile_in(dir)?;
        let mut w = PackWriter::new(key, 2 * SPOOL_FLUSH);
        w.spool = Some(Spool {
            file,
            hash: blake3::Hasher::new(),
        });
        Ok(w)
    }

    /// Seals and appends one blob whose payload is already encoded; returns
    /// its sealed length. Fails only when a spooled pack cannot write its
    /// file.
    pub fn add(&mut self, blob: EncodedBlob<'_>) -> std::io::Result<u32> {
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
        let offset = u32::try_from(self.len()).expect("packs stay below 4 GiB");
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
        if self.buf.len() >= SPOOL_FLUSH {
            self.write_out()?;
        }
        Ok(entry.length)
    }

    /// Moves the buffered bytes to the spool, if there is one.
    fn write_out(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(spool) = &mut self.spool {
            spool.file.write_all(&self.buf)?;
            spool.hash.update(&self.buf);
            self.spooled += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.spooled as usize + self.buf.len()
    }

    /// True once the pack holds `target` bytes or [`MAX_PACK_BLOBS`] blobs.
    pub fn is_full(&self, target: usize) -> bool {
        self.len() >= target || self.entries.len() >= MAX_PACK_BLOBS
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the sealed header and trailer and names the pack. Fails only
    /// when a spooled pack cannot write its file.
    pub fn finish(mut self) -> std::io::Result<FinishedPack> {
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
        self.write_out()?;
        let (id, body) = match self.spool.take() {
            Some(spool) => {
                let body = PackBody::Spooled {
                    file: spool.file,
                    len: self.spooled,
                };
                (*spool.hash.finalize().as_bytes(), body)
            }
            None => {
                let bytes = Bytes::from(std::mem::take(&mut self.buf));
                (content_hash(&bytes), PackBody::Memory(bytes))
            }
        };
        Ok(FinishedPack {
            id: PackId(id),
            salt: self.salt,
            body,
            blobs: self.entries,
            bases: self.bases,
        })
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
        assert_eq!(pack.body.len(), sealed + pack_overhead(5));
    }

    fn build(key: &MasterKey, blobs: &[Vec<u8>]) -> FinishedPack {
        build_in(PackWriter::new(key, 1024), key, blobs)
    }

    fn build_in(mut w: PackWriter, key: &MasterKey, blobs: &[Vec<u8>]) -> FinishedPack {
        for b in blobs {
            let (enc, payload) = compress::compress(b, 3);
            w.add(EncodedBlob {
                bases: &[],
                kind: BlobKind::Data,
                id: key.blob_id(b),
                encoding: enc,
                payload: &payload,
                raw_len: b.len() as u32,
            })
            .unwrap();
        }
        w.finish().unwrap()
    }

    /// The bytes of a finished pack, wherever they are.
    fn bytes(pack: &FinishedPack) -> Bytes {
        pack.body.read_all().unwrap()
    }

    #[test]
    fn a_spooled_pack_is_the_same_pack_with_its_bytes_in_a_file() {
        let key = MasterKey::generate();
        let dir = tempfile::tempdir().unwrap();
        // Incompressible blobs of 300 KB: the spool is written several times.
        let blobs: Vec<Vec<u8>> = (0..12).map(|i| crate::test_noise(300_000, i)).collect();
        let spooled = build_in(PackWriter::spooled(&key, dir.path()).unwrap(), &key, &blobs);
        assert!(matches!(spooled.body, PackBody::Spooled { .. }));
        // The file is unnamed: nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let bytes = bytes(&spooled);
        assert_eq!(bytes.len() as u64, spooled.body.len());
        assert_eq!(PackId(content_hash(&bytes)), spooled.id);
        let (salt, entries) = read_header(&key, &bytes).unwrap();
        assert_eq!((salt, &entries), (spooled.salt, &spooled.blobs));
        let sub = key.subkey(&salt);
        for (e, b) in entries.iter().zip(&blobs) {
            let sealed = spooled.body.read_range(e.range()).unwrap();
            assert_eq!(&open_blob(&key, &sub, e, &sealed).unwrap(), b);
        }
    }

    #[test]
    fn flipped_bytes_are_detected_everywhere() {
        let key = MasterKey::generate();
        let pack = build(&key, &[b"one".repeat(100), b"two".to_vec()]);
        let bytes = bytes(&pack);
        let (salt, entries) = read_header(&key, &bytes).unwrap();
        let sub = key.subkey(&salt);
        for i in 0..bytes.len() {
            let mut bad = bytes.to_vec();
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
        let pack = bytes(&build(&key, &[b"a".to_vec(), b"b".to_vec()]));
        let (salt, entries) = read_header(&key, &pack).unwrap();
        let mut swapped = entries[0];
        swapped.id = entries[1].id;
        let r = entries[0].range();
        let err = open_blob(
            &key,
            &key.subkey(&salt),
            &swapped,
            &pack[r.start as usize..r.end as usize],
        );
        assert!(err.is_err());
    }

    proptest! {
        #[test]
        fn write_then_read_without_index(blobs: Vec<Vec<u8>>) {
            let key = MasterKey::generate();
            let pack = build(&key, &blobs);
            let bytes = bytes(&pack);
            prop_assert_eq!(PackId(content_hash(&bytes)), pack.id);
            let (salt, entries) = read_header(&key, &bytes).unwrap();
            prop_assert_eq!(salt, pack.salt);
            prop_assert_eq!(&entries, &pack.blobs);
            let sub = key.subkey(&salt);
            for (e, b) in entries.iter().zip(&blobs) {
                let r = e.range();
                let plain = open_blob(&key, &sub, e, &bytes[r.start as usize..r.end as usize]).unwrap();
                prop_assert_eq!(&plain, b);
            }
        }
    }
}
