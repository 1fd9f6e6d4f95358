//! Child processes the bench starts: killed by their own pid if the bench
//! fails half-way ([`Guarded`]), and reaped with `wait4` so the kernel's
//! accounting of that one child — peak RSS, user and system CPU time — is
//! read exactly, without polling `/proc` ([`reap`]).

use std::process::Child;

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
    pub peak_rss_mib: f64,
    /// User plus system CPU seconds.
    pub cpu_s: f64,
}

/// Waits for `child` to exit (blocking) and returns its own usage.
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
        // Linux counts ru_maxrss in KiB.
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
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
