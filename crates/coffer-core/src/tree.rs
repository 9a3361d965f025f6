//! A stream's content as a tree of list blobs: level-0 nodes list data chunk
//! ids, higher levels list nodes. Node boundaries are content-defined (a node
//! ends after an entry whose id ends in a zero byte, or at [`MAX_FANOUT`]),
//! so unchanged stretches of a stream produce the same nodes and dedupe too,
//! and no stream needs one giant object. Pure: building emits encoded nodes,
//! walking asks for nodes; storage is the repository's business.

use bincode::{Decode, Encode};

use crate::codec;
use crate::crypto::MasterKey;
use crate::id::BlobId;

/// Most entries in one node (about 40 KiB encoded).
pub const MAX_FANOUT: usize = 1024;

/// One entry: a data chunk (in level-0 nodes) or a child node, with the
/// number of stream bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct TreeEntry {
    /// Data blob or tree blob id.
    pub id: BlobId,
    /// Stream bytes below this entry.
    pub size: u64,
}

/// Payload of a tree blob.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct TreeNode {
    /// 0 for nodes listing data chunks.
    pub level: u8,
    /// Entries in stream order.
    pub entries: Vec<TreeEntry>,
}

impl TreeNode {
    /// Decodes a tree blob's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        codec::decode(bytes).map_err(|e| format!("tree node: {e}"))
    }

    fn covered(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// An encoded node ready to be stored as a tree blob.
pub struct NodeBlob {
    /// Its blob id.
    pub id: BlobId,
    /// Its plaintext.
    pub bytes: Vec<u8>,
}

fn ends_node(id: &BlobId) -> bool {
    id.0[31] == 0
}

/// Builds the tree while chunk ids arrive in stream order; memory is one
/// partial node per level.
#[derive(Default)]
pub struct TreeBuilder {
    levels: Vec<Vec<TreeEntry>>,
}

impl TreeBuilder {
    /// Adds the next data chunk; completed nodes are appended to `out`.
    pub fn push_chunk(&mut self, key: &MasterKey, entry: TreeEntry, out: &mut Vec<NodeBlob>) {
        self.push_at(key, 0, entry, out);
    }

    fn push_at(
        &mut self,
        key: &MasterKey,
        level: usize,
        entry: TreeEntry,
        out: &mut Vec<NodeBlob>,
    ) {
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        self.levels[level].push(entry);
        if ends_node(&entry.id) || self.levels[level].len() >= MAX_FANOUT {
            self.close(key, level, out);
        }
    }

    fn close(&mut self, key: &MasterKey, level: usize, out: &mut Vec<NodeBlob>) {
        let node = TreeNode {
            level: level as u8,
            entries: std::mem::take(&mut self.levels[level]),
        };
        // A node holds at most MAX_FANOUT entries of 40 bytes.
        let bytes = codec::encode(&node).expect("a tree node encodes");
        let id = key.blob_id(&bytes);
        let size = node.covered();
        out.push(NodeBlob { id, bytes });
        self.push_at(key, level + 1, TreeEntry { id, size }, out);
    }

    /// Closes every partial node and returns the root (a tree blob id and the
    /// stream size). An empty stream gets an empty level-0 node.
    pub fn finish(mut self, key: &MasterKey, out: &mut Vec<NodeBlob>) -> TreeEntry {
        let mut level = 0;
        loop {
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            let is_top = self.levels[level + 1..].iter().all(Vec::is_empty);
            if is_top && level > 0 && self.levels[level].len() == 1 {
                return self.levels[level][0];
            }
            if is_top || !self.levels[level].is_empty() {
                self.close(key, level, out);
            }
            level += 1;
        }
    }
}

/// What a [`TreeWalker`] needs next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Load this tree blob and hand it to [`TreeWalker::provide`].
    Need(BlobId),
    /// The next data chunk of the stream.
    Chunk(TreeEntry),
    /// The stream is complete.
    Done,
}

/// Walks a tree depth-first, yielding data chunks in order; holds one node
/// per level. Checks levels and sizes so a damaged tree is an error.
pub struct TreeWalker {
    stack: Vec<(TreeNode, usize)>,
    pending: Option<(TreeEntry, Option<u8>)>,
}

impl TreeWalker {
    /// Starts at the stream's root entry.
    pub fn new(root: TreeEntry) -> Self {
        TreeWalker {
            stack: Vec::new(),
            pending: Some((root, None)),
        }
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        if let Some((e, _)) = &self.pending {
            return Step::Need(e.id);
        }
        while let Some((node, pos)) = self.stack.last_mut() {
            if *pos < node.entries.len() {
                let e = node.entries[*pos];
                *pos += 1;
                if node.level == 0 {
                    return Step::Chunk(e);
                }
                self.pending = Some((e, Some(node.level - 1)));
                return Step::Need(e.id);
            }
            self.stack.pop();
        }
        Step::Done
    }

    /// The entry of the node the last [`Step::Need`] asked for, and the
    /// level it must have (`None` for the root).
    pub fn needed(&self) -> Option<(TreeEntry, Option<u8>)> {
        self.pending
    }

    /// Passes over the node the last [`Step::Need`] asked for, as if it had
    /// been provided and walked: for a caller that has already checked that
    /// node, with the size its entry records.
    pub fn skip(&mut self) {
        self.pending.take().expect("skip follows Step::Need");
    }

    /// Supplies the node asked for by the last [`Step::Need`].
    pub fn provide(&mut self, node: TreeNode) -> Result<(), String> {
        let (entry, level) = self.pending.take().expect("provide follows Step::Need");
        if let Some(level) = level {
            if node.level != level {
                return Err(format!(
                    "tree node {} has level {}, expected {level}",
                    entry.id.short(),
                    node.level
                ));
            }
        }
        if node.covered() != entry.size {
            return Err(format!(
                "tree node {} covers {} bytes, its parent says {}",
                entry.id.short(),
                node.covered(),
                entry.size
            ));
        }
        self.stack.push((node, 0));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn build(key: &MasterKey, chunks: &[TreeEntry]) -> (TreeEntry, HashMap<BlobId, TreeNode>) {
        let mut b = TreeBuilder::default();
        let mut out = Vec::new();
        for c in chunks {
            b.push_chunk(key, *c, &mut out);
        }
        let root = b.finish(key, &mut out);
        let nodes = out
            .into_iter()
            .map(|n| (n.id, TreeNode::decode(&n.bytes).unwrap()))
            .collect();
        (root, nodes)
    }

    fn walk(root: TreeEntry, nodes: &HashMap<BlobId, TreeNode>) -> Result<Vec<TreeEntry>, String> {
        let mut w = TreeWalker::new(root);
        let mut got = Vec::new();
        loop {
            match w.next_step() {
                Step::Need(id) => w.provide(nodes.get(&id).ok_or("missing")?.clone())?,
                Step::Chunk(e) => got.push(e),
                Step::Done => return Ok(got),
            }
        }
    }

    fn chunks(n: usize, salt: u8) -> Vec<TreeEntry> {
        (0..n)
            .map(|i| TreeEntry {
                id: BlobId(*blake3::hash(&[&i.to_le_bytes()[..], &[salt]].concat()).as_bytes()),
                size: i as u64 % 7 + 1,
            })
            .collect()
    }

    #[test]
    fn empty_and_single_chunk_streams_have_a_node_root() {
        let key = MasterKey::generate();
        let (root, nodes) = build(&key, &[]);
        assert_eq!(root.size, 0);
        assert_eq!(nodes[&root.id].entries.len(), 0);
        assert_eq!(walk(root, &nodes).unwrap(), vec![]);
        let one = chunks(1, 0);
        let (root, nodes) = build(&key, &one);
        assert_eq!(walk(root, &nodes).unwrap(), one);
    }

    #[test]
    fn large_streams_get_several_levels_and_local_edits_share_nodes() {
        let key = MasterKey::generate();
        let a = chunks(20_000, 0);
        let (root_a, nodes_a) = build(&key, &a);
        assert!(nodes_a.values().any(|n| n.level >= 1));
        assert!(nodes_a.values().all(|n| n.entries.len() <= MAX_FANOUT));
        let mut b = a.clone();
        b[10_000].id = BlobId([1; 32]);
        let (root_b, nodes_b) = build(&key, &b);
        assert_ne!(root_a, root_b);
        let new = nodes_b.keys().filter(|k| !nodes_a.contains_key(k)).count();
        assert!(new <= 4, "{new} new nodes for one changed chunk");
        assert_eq!(walk(root_b, &nodes_b).unwrap(), b);
    }

    #[test]
    fn damaged_sizes_are_detected() {
        let key = MasterKey::generate();
        let (mut root, nodes) = build(&key, &chunks(10, 0));
        root.size += 1;
        assert!(walk(root, &nodes).is_err());
    }

    proptest! {
        #[test]
        fn walk_returns_what_was_built(n in 0usize..3000, salt: u8) {
            let key = MasterKey::generate();
            let c = chunks(n, salt);
            let (root, nodes) = build(&key, &c);
            prop_assert_eq!(root.size, c.iter().map(|e| e.size).sum::<u64>());
            prop_assert_eq!(walk(root, &nodes).unwrap(), c);
        }
    }
}
