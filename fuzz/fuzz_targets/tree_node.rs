//! Tree nodes, decoded and walked.
#![no_main]
use coffer_core::id::BlobId;
use coffer_core::tree::{Step, TreeEntry, TreeNode, TreeWalker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((_, bytes)) = coffer_fuzz::mode(data) else {
        return;
    };
    let Ok(node) = TreeNode::decode(bytes) else {
        return;
    };
    // Walk a stream whose root is this node: it must end, or refuse.
    let size: u64 = node
        .entries
        .iter()
        .map(|e| e.size)
        .fold(0, u64::saturating_add);
    let mut walker = TreeWalker::new(TreeEntry {
        id: BlobId([0; 32]),
        size,
    });
    let mut node = Some(node);
    for _ in 0..10_000 {
        match walker.next_step() {
            Step::Need(_) => match node.take() {
                Some(n) => {
                    if walker.provide(n).is_err() {
                        return;
                    }
                }
                None => return,
            },
            Step::Chunk(_) => {}
            Step::Done => return,
        }
    }
});
