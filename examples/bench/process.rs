//! Child processes the bench starts: killed by their own pid if the bench
//! fails half-way ([`Guarded`]), watched for their peak RSS while they run
//! ([`watch_peak_rss`]), and reaped with `wait4` for the kernel's count of
//! that one child's CPU time ([`reap`]).
//!
//! Peak RSS is not taken from `wait4`'s `ru_maxrss`: Linux carries the
//! parent's high-water mark into a child across `exec`, so every child
//! would report at least the bench's own peak (which holds upload payloads
//! of hundreds of MiB). The child's `VmHWM` in `/proc/<pid>/status` counts
//! its own address space only; it never decreases, so polling it every few
//! milliseconds until the child exits misses at most the growth of its last
//! few milliseconds.

use std::process::Child;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};

/// A child killed (SIGKILL, by its own pid) when dropped unreaped.
pub struct Guarded(Option<Child>);

impl Guarded {
    pub fn new(child: Child) -> Guarded {
        Guarded(Some(child))
    }

    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// Hands the child over (to [`reap`]); dropping `self` then does nothing.
    pub fn disarm(mut self) -> Option<Child> {
        self.0.take()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a reaped child used.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// The raw `wait` status.
    pub status: i32,
    /// User plus system CPU seconds.
    pub cpu_s: f64,
}

/// How often a running child's `VmHWM` is read.
const RSS_POLL: Duration = Duration::from_millis(5);

/// Polls `pid`'s `VmHWM` until it exits (its `/proc` entry loses its memory
/// lines once it is a zombie); the thread returns the largest, in MiB. Join
/// it before reaping the child, so the pid cannot be someone else's yet.
pub fn watch_peak_rss(pid: u32) -> JoinHandle<f64> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut peak_kib = 0u64;
        loop {
            let hwm = std::fs::read_to_string(&path).ok().and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            });
            match hwm {
                Some(kib) => peak_kib = peak_kib.max(kib),
                None => break,
            }
            std::thread::sleep(RSS_POLL);
        }
        peak_kib as f64 / 1024.0
    })
}

/// Waits for `child` to exit (blocking) and returns its own CPU time.
pub fn reap(child: Child) -> anyhow::Result<Usage> {
    let pid = libc::pid_t::try_from(child.id()).context("a pid out of range")?;
    let mut status = 0;
    // SAFETY: `rusage` is plain old data, valid when zeroed; `wait4` fills it
    // and `status` for our own child `pid`. Nothing else reaps it: std's
    // `Child` reaps only in `wait`/`try_wait`, and it is consumed here.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if reaped != pid {
        bail!("wait4 for {pid}: {}", std::io::Error::last_os_error());
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Usage {
        status,
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    })
}

/// Asks `pid` (a child of ours, not yet reaped) to shut down gracefully.
pub fn terminate(pid: u32) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(pid).context("a pid out of range")?;
    // SAFETY: a plain syscall on our own unreaped child's pid.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        bail!("SIGTERM to {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}
