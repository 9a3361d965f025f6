//! Standard output for results (listings, reports, JSON): every write's
//! failure is an error, never a panic. A reader that closed the pipe
//! (`coffer snapshots | head -1`) gives a broken pipe, which ends the command
//! quietly with success; a full disk or an I/O error is exit 17.

use std::fmt;
use std::io::Write;

use coffer_core::Error;

/// Writes formatted text to stdout and flushes it.
pub fn write(args: fmt::Arguments<'_>) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}

/// `print!` that returns the failure (`?` in a command).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

/// `println!` that returns the failure (`?` in a command).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
