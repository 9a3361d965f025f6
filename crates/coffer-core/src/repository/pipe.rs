//! A bounded byte pipe between a writer thread and a reader thread, for a
//! stream restored from one repository and backed up into another (`copy`).
//! The reader sees the end of the stream only when the writing side says it
//! finished: a writer that is dropped early (its restore failed) is an
//! error, never a short stream that could be committed as whole.

use std::io::{self, Read, Write};

/// Blocks in flight.
const BLOCKS: usize = 4;
/// Bytes a block holds at most.
const BLOCK: usize = 1024 * 1024;

enum Msg {
    Data(Vec<u8>),
    End,
    Failed(String),
}

/// The writing end (given to a restore).
pub(super) struct PipeWriter {
    tx: crossbeam_channel::Sender<Msg>,
    buf: Vec<u8>,
}

/// Ends the stream once its writer is done: [`Finish::end`] after it wrote
/// everything, [`Finish::fail`] when it could not.
pub(super) struct Finish {
    tx: crossbeam_channel::Sender<Msg>,
}

/// The reading end (given to a backup).
pub(super) struct PipeReader {
    rx: crossbeam_channel::Receiver<Msg>,
    block: Vec<u8>,
    at: usize,
    ended: bool,
}

/// A pipe: its writer, what finishes it, and its reader.
pub(super) fn pipe() -> (PipeWriter, Finish, PipeReader) {
    let (tx, rx) = crossbeam_channel::bounded(BLOCKS);
    (
        PipeWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(BLOCK),
        },
        Finish { tx },
        PipeReader {
            rx,
            block: Vec::new(),
            at: 0,
            ended: false,
        },
    )
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the copy's reader stopped")
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
        self.tx.send(Msg::Data(full)).map_err(|_| closed())
    }
}

impl Drop for PipeWriter {
    /// Sends what is buffered: a restore drops its output when done.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Finish {
    /// The stream is complete (its writer flushed and dropped).
    pub fn end(self) {
        let _ = self.tx.send(Msg::End);
    }

    /// The stream could not be written whole.
    pub fn fail(self, why: String) {
        let _ = self.tx.send(Msg::Failed(why));
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(block)) => {
                    self.block = block;
                    self.at = 0;
                }
                Ok(Msg::End) => self.ended = true,
                Ok(Msg::Failed(why)) => return Err(io::Error::other(why)),
                Err(_) => return Err(io::Error::other("the copied stream ended early")),
            }
        }
        let n = out.len().min(self.block.len() - self.at);
        out[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_and_the_end_only_when_finished() {
        let (mut w, finish, mut r) = pipe();
        let data: Vec<u8> = (0..3 * BLOCK + 17).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.flush().unwrap();
            drop(w);
            finish.end();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == data);
    }

    #[test]
    fn a_writer_gone_without_finishing_is_an_error_not_an_end() {
        let (mut w, finish, mut r) = pipe();
        w.write_all(b"half a dump").unwrap();
        w.flush().unwrap();
        drop((w, finish));
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert!(e.to_string().contains("ended early"), "{e}");

        let (w, finish, mut r) = pipe();
        drop(w);
        finish.fail("pack 1234 is missing".into());
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("pack 1234"), "{e}");
    }

    #[test]
    fn a_reader_gone_stops_the_writer() {
        let (mut w, _finish, r) = pipe();
        drop(r);
        assert!(w.write_all(&vec![0; 2 * BLOCK]).is_err());
    }
}
