//! Stderr that never panics. `eprintln!` panics when stderr's reader is
//! gone (EPIPE: an MCP client that left, a closed terminal pipe), and a run
//! that must restore, or a command that must exit with its own code, cannot
//! afford that: what fails to print is lost, nothing else.

use std::io::Write;

/// One line on stderr, write errors ignored. Through [`stderr_line!`].
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args);
    let _ = err.write_all(b"\n");
}

/// `eprintln!` that ignores write errors instead of panicking.
macro_rules! stderr_line {
    ($($arg:tt)*) => {
        $crate::stderr::line(format_args!($($arg)*))
    };
}

/// tracing's writer: stderr, every write reported done. tracing-subscriber
/// `eprintln!`s a failed write (and so panics when stderr is gone).
pub(crate) struct Quiet;

impl Write for Quiet {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
