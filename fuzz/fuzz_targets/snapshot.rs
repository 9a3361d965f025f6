//! Snapshot objects, and what commands do with them.
#![no_main]
use coffer_core::id::SnapshotId;
use coffer_core::object::ObjectType;
use coffer_core::snapshot::{self, Filter, Snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((stored, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    // Both versions: type 7 (with sketches) and type 3.
    let decoded = [ObjectType::SnapshotV2, ObjectType::Snapshot]
        .into_iter()
        .find_map(|t| {
            let plain = coffer_fuzz::plaintext(stored, bytes, t)?;
            Snapshot::decode(t, &plain).ok()
        });
    let Some(snap) = decoded else {
        return;
    };
    let _ = (snap.zoned_time(), snap.stored_size(), snap.added_size());
    let id = SnapshotId([1; 32]);
    let _ = snap.stream(&id, None);
    let list = vec![(id, snap)];
    let filter = Filter {
        hosts: vec!["h".into()],
        tags: Filter::tag_lists(&["a,b".into()]),
        names: vec!["x".into()],
    };
    let _ = snapshot::find(&list, &filter, "latest", Some("x"));
    let _ = snapshot::newest_per_stream(&list, &Filter::default());
});
