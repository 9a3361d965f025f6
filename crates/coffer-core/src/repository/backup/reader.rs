//! The backup's reader thread: opens each stream in turn (a producer command
//! starts only when its turn comes), reads it in large blocks and cuts them
//! into content-defined chunks, sending them to the packer over a bounded
//! channel, then an end marker per stream. An error (a failing producer, an
//! unreadable input) is sent in place of the next block.

use std::io::Read;

use bytes::{Bytes, BytesMut};

use crate::chunker::Chunker;
use crate::error::{Error, Result};

/// Bytes the reader gathers before cutting them into chunks (plus up to a
/// chunk carried over). 1 MiB measured as fast as 2 MiB and 5-7 MiB lower
/// at peak (`docs/performance.md`, "Memory").
const READ_BLOCK: usize = 1024 * 1024;
/// Cut blocks waiting for the packer.
pub(super) const BLOCK_QUEUE: usize = 1;

fn read_full(input: &mut dyn Read, buf: &mut BytesMut, target: usize) -> std::io::Result<bool> {
    while buf.len() < target {
        let start = buf.len();
        buf.resize(target, 0);
        let n = loop {
            match input.read(&mut buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    buf.truncate(start);
                    return Err(e);
                }
            }
        };
        buf.truncate(start + n);
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What the reader threads send the packer, for stream number `.0`.
pub(super) enum Block {
    /// The next chunks of the stream.
    Chunks(usize, Vec<Bytes>),
    /// The stream ended.
    End(usize),
}

/// Opens one stream when its turn comes (a producer command is started only
/// then, so at most as many producers run as streams are read at once).
pub type OpenStream = Box<dyn FnOnce() -> Result<Box<dyn Read + Send>> + Send>;

/// Reads the sources, `at_once` at a time (each on a thread of its own,
/// taking the next unread source when done): each -> blocks of chunks,
/// then [`Block::End`]. Blocks of one stream arrive in order; streams read
/// at once interleave. The first error stops every reader.
pub(super) fn read_streams(
    sources: Vec<OpenStream>,
    chunker: Chunker,
    tx: crossbeam_channel::Sender<Result<Block>>,
    at_once: usize,
) {
    let queue = std::sync::Mutex::new(sources.into_iter().enumerate());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..at_once.max(1) {
            let (tx, queue, stop, chunker) = (tx.clone(), &queue, &stop, &chunker);
            scope.spawn(move || loop {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let Some((n, open)) = queue.lock().expect("source queue").next() else {
                    return;
                };
                let ok = match open() {
                    Ok(input) => {
                        read_chunks(n, input, chunker, &tx) && tx.send(Ok(Block::End(n))).is_ok()
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        false
                    }
                };
                if !ok {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            });
        }
    });
}

/// Chunks one input; false when the packer is gone or reading failed (the
/// error was sent).
fn read_chunks(
    stream: usize,
    mut input: impl Read,
    chunker: &Chunker,
    tx: &crossbeam_channel::Sender<Result<Block>>,
) -> bool {
    let mut buf = BytesMut::with_capacity(READ_BLOCK + chunker.max_size());
    loop {
        if crate::interrupt::requested() {
            let _ = tx.send(Err(Error::Interrupted));
            return false;
        }
        let eof = match read_full(&mut input, &mut buf, READ_BLOCK + chunker.max_size()) {
            Ok(eof) => eof,
            Err(e) => {
                let err = match crate::producer::producer_error(&e) {
                    Some(p) => Error::Producer(p.clone()),
                    None => Error::Input(e),
                };
                let _ = tx.send(Err(err));
                return false;
            }
        };
        let lengths = chunker.chunk_lengths(&buf, eof);
        let consumed: usize = lengths.iter().sum();
        let mut block = buf.split_to(consumed).freeze();
        let chunks = lengths.into_iter().map(|l| block.split_to(l)).collect();
        if tx.send(Ok(Block::Chunks(stream, chunks))).is_err() {
            return false;
        }
        if eof {
            return true;
        }
    }
}
