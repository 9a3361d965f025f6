//! Index files of both versions, into the in-memory index and back out.
#![no_main]
use coffer_core::codec;
use coffer_core::index::{split_index_file, Index, IndexFile, IndexFileV1};
use coffer_core::object::{self, ObjectType};
use coffer_core::pack::BlobKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((stored, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    let key = coffer_fuzz::key();
    let files: Vec<IndexFile> = if stored {
        let v2 = object::open(key, ObjectType::IndexV2, bytes)
            .ok()
            .and_then(|p| codec::decode::<IndexFile>(&p).ok());
        let v1 = object::open(key, ObjectType::Index, bytes)
            .ok()
            .and_then(|p| codec::decode::<IndexFileV1>(&p).ok())
            .map(IndexFile::from);
        v2.into_iter().chain(v1).collect()
    } else {
        let v2 = codec::decode::<IndexFile>(bytes).ok();
        let v1 = codec::decode::<IndexFileV1>(bytes)
            .ok()
            .map(IndexFile::from);
        v2.into_iter().chain(v1).collect()
    };
    for file in files {
        let mut index = Index::default();
        if index.add_file(&file).is_err() {
            continue;
        }
        index.finish();
        let out = index.export();
        for p in out.packs.iter().chain(out.marked.iter().map(|m| &m.pack)) {
            for b in &p.blobs {
                // Kinds this build does not know (reserved for later ones)
                // are kept, and found by no lookup of a known kind.
                if let Some(kind) = BlobKind::from_byte(b.kind) {
                    assert!(index.get(kind, &b.id).is_some());
                }
            }
        }
        let parts = split_index_file(file.clone(), 7);
        let total: u64 = parts.iter().map(IndexFile::blob_count).sum();
        assert_eq!(total, file.blob_count());
    }
});
