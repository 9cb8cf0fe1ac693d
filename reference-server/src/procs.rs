//! `squall-server --procs N`: N processes listening on one port (`SO_REUSEPORT`, so the
//! kernel spreads connections among them), their connection, frame and byte counters kept
//! in one shared file every process maps, so `/metrics` on any of them is the sum of all.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// This process's place among the `--procs` processes: the shared counters file, its
/// index (0 for the first) and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSlot {
    /// The file holding every process's counters (made by the first process).
    pub file: PathBuf,
    /// This process's index, 0 ≤ index < count.
    pub index: usize,
    /// The number of processes.
    pub count: usize,
}

/// A shared, writable mapping of a whole file.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory holding atomics only; every access goes through
// them, so it may be shared between threads.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `file`, which must be `len` bytes long: zero bytes are what the counters start
    /// from, so the first process sizes it (`create`) before any other maps it.
    pub(crate) fn map(file: &Path, len: usize, create: bool) -> io::Result<Region> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(file)?;
        if create {
            f.set_len(len as u64)?;
        }
        if f.metadata()?.len() != len as u64 || len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the shared counters file is not {len} bytes: the processes disagree on --procs or --threads",
                    file.display()
                ),
            ));
        }
        use rustix::mm::{mmap, MapFlags, ProtFlags};
        // SAFETY: a fresh shared mapping of a file we opened read-write, `len` bytes long;
        // nothing else in this process refers to the memory it returns.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &f,
                0,
            )
        }?;
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Region { ptr, len })
    }

    /// The mapping as `T`s (as many as fit).
    ///
    /// # Safety
    /// `T` must be valid for any bytes the mapping may hold (all-zero to start with, then
    /// only what `T`'s own methods write), and aligned to at most a page.
    pub(crate) unsafe fn as_slice<T>(&self) -> &[T] {
        std::slice::from_raw_parts(self.ptr.as_ptr().cast::<T>(), self.len / size_of::<T>())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference into it outlives `self`.
        unsafe {
            let _ = rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The shared counters file of the `--procs` processes started by the process `pid`.
pub fn stats_file(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("squall-server-{pid}.stats"))
}

/// Starts process `index` of `count`: this executable with the same arguments, then
/// `extra` (which override them: `--listen` with the port the first process got). It
/// ends if this process dies.
pub fn spawn_sibling(extra: &[String]) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(io::Error::from)
        });
    }
    cmd.spawn()
}

/// Asks a sibling to shut down as a signal would (it closes its connections with 1001).
pub fn stop(child: &std::process::Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}
