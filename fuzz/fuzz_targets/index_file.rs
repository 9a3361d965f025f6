//! Index files of every version, into the in-memory index and back out.
#![no_main]
use coffer_core::codec;
use coffer_core::index::{split_index_file, Index, IndexFile, IndexFileV1, IndexFileV2};
use coffer_core::object::{self, ObjectType};
use coffer_core::pack::BlobKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((stored, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    let key = coffer_fuzz::key();
    let open = |t: ObjectType| {
        if stored {
            object::open(key, t, bytes).ok()
        } else {
            Some(bytes.to_vec())
        }
    };
    let v3 = open(ObjectType::IndexV3).and_then(|p| codec::decode::<IndexFile>(&p).ok());
    let v2 = open(ObjectType::IndexV2)
        .and_then(|p| codec::decode::<IndexFileV2>(&p).ok())
        .map(IndexFile::from);
    let v1 = open(ObjectType::Index)
        .and_then(|p| codec::decode::<IndexFileV1>(&p).ok())
        .map(IndexFile::from);
    let files: Vec<IndexFile> = v3.into_iter().chain(v2).chain(v1).collect();
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
                    let loc = index.get(kind, &b.id).expect("exported blobs are found");
                    // A delta's bases travel with it.
                    assert_eq!(
                        index.bases(&loc).map(<[_]>::to_vec),
                        p.bases.iter().find(|d| d.id == b.id).map(|d| d.bases.clone())
                    );
                }
            }
        }
        let parts = split_index_file(file.clone(), 7);
        let total: u64 = parts.iter().map(IndexFile::blob_count).sum();
        assert_eq!(total, file.blob_count());
    }
});
