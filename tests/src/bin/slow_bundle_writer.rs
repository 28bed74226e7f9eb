//! Test helper for the kill-mid-write test (tests/tests/write_faults.rs): rewrites the bundle
//! SRC to DST through brenier's atomic write path, in 8 KiB pieces, printing `wrote N` after
//! each and pausing, so the test can SIGKILL it at a chosen byte count.
//!
//!     slow_bundle_writer SRC DST

use std::io::Write;
use std::time::Duration;

use brenier::bundle::Bundle;
use brenier_tests::bundle_edit::sections_of;

/// Forwards writes in small pieces and reports progress on stdout.
struct Slow<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl Write for Slow<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(&buf[..buf.len().min(8192)])?;
        // Flushing pushes the bytes into the temporary file, so a kill leaves it partial.
        self.inner.flush()?;
        self.written += n as u64;
        println!("wrote {}", self.written);
        std::io::stdout().flush()?;
        std::thread::sleep(Duration::from_millis(5));
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, dst] = args.as_slice() else { return Err("usage: slow_bundle_writer SRC DST".into()) };
    let sections = sections_of(&Bundle::open(src)?);
    brenier::io::write_atomic_with(dst.as_ref(), |w| {
        let mut slow = Slow { inner: w, written: 0 };
        brenier::bundle::write_to(&mut slow, &sections).map(|_| ()).map_err(std::io::Error::other)
    })?;
    println!("done");
    Ok(())
}
