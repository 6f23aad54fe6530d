//! Lambda's CPU share and memory limit for a function process, from cgroup v1.
//!
//! Lambda gives a function CPU in proportion to its memory: "At 1,769 MB, a function has the
//! equivalent of one vCPU (one vCPU-second of credits per second)" (AWS, "Configure Lambda
//! function memory"). Here that is a CFS bandwidth quota of `period × memory / 1,769` per
//! `period` with both of this machine's CPUs visible (so 3,008 MB gets 1.7 CPUs), and the
//! memory size as the group's hard limit, swap included, so that running out of memory is an
//! out-of-memory kill as on Lambda. The process joins its groups before `exec`: init runs under
//! the limits too.
//!
//! A dozen writes under `/sys/fs/cgroup`, by hand: a cgroup crate would still leave the
//! before-`exec` attach to us. The benchmark refuses to run when it cannot set a quota.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Memory of one vCPU (AWS, "Configure Lambda function memory").
pub const MB_PER_VCPU: u64 = 1_769;
const CPU_ROOT: &str = "/sys/fs/cgroup/cpu";
const MEMORY_ROOT: &str = "/sys/fs/cgroup/memory";
/// The benchmark's groups live under this one, in each hierarchy.
const PARENT: &str = "serverless-auth-bench";

/// The CPU and memory a function gets: a Lambda memory size, or no limit at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `MemorySize`, in MB (Lambda's MB are MiB: 128 MB is 134,217,728 bytes); `None`: no quota
    /// (both CPUs) and no memory limit, as the earlier reports measured.
    pub memory_mb: Option<u64>,
    /// The CFS period the quota is granted over.
    pub period_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self::NO_QUOTA
    }
}

impl Limits {
    pub const NO_QUOTA: Self = Self { memory_mb: None, period_ms: 100 };

    pub fn lambda(memory_mb: u64, period_ms: u64) -> Self {
        Self { memory_mb: Some(memory_mb), period_ms }
    }

    /// The CPU time granted per period, in microseconds; `None` for no quota.
    pub fn quota_us(&self) -> Option<u64> {
        self.memory_mb.map(|mb| self.period_ms * 1_000 * mb / MB_PER_VCPU)
    }

    /// The CPUs this share is worth (`quota / period`); `None` without a quota.
    pub fn cpus(&self) -> Option<f64> {
        self.memory_mb.map(|mb| mb as f64 / MB_PER_VCPU as f64)
    }

    /// `128 MB`, `128 MB @ 100 ms`, `no quota`: the period shows when it is not the default.
    pub fn label(&self, default_period_ms: u64) -> String {
        match self.memory_mb {
            None => "no quota".to_owned(),
            Some(mb) if self.period_ms == default_period_ms => format!("{mb} MB"),
            Some(mb) => format!("{mb} MB @ {} ms", self.period_ms),
        }
    }

    /// Parses `128` (at `default_period_ms`), `128@100` (a 100 ms period) or `unlimited`.
    pub fn parse(text: &str, default_period_ms: u64) -> Result<Self, String> {
        if text == "unlimited" {
            return Ok(Self::NO_QUOTA);
        }
        let (mb, period) = match text.split_once('@') {
            Some((mb, period)) => (mb, period.parse().map_err(|_| format!("{text:?}: the period is not a number"))?),
            None => (text, default_period_ms),
        };
        let mb: u64 = mb.parse().map_err(|_| format!("{text:?}: not a memory size in MB"))?;
        // Lambda's range: 128 MB to 10,240 MB.
        if !(128..=10_240).contains(&mb) {
            return Err(format!("{text:?}: Lambda's memory sizes are 128 to 10,240 MB"));
        }
        if !(1..=1_000).contains(&period) {
            return Err(format!("{text:?}: the period must be 1 to 1,000 ms"));
        }
        Ok(Self::lambda(mb, period))
    }
}

/// A pair of cgroups (cpu, memory) for one function process. Removed when dropped, once the
/// process has exited.
pub struct Sandbox {
    cpu: PathBuf,
    memory: Option<PathBuf>,
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Sandbox {
    /// Creates (or resets) the groups `name` with `limits`. Fails, rather than measuring on a
    /// CPU without a quota, when the quota cannot be set.
    pub fn create(name: &str, limits: Limits) -> Result<Self, String> {
        let cpu = Path::new(CPU_ROOT).join(PARENT).join(name);
        std::fs::create_dir_all(&cpu).map_err(|e| {
            format!(
                "cannot create the cgroup {} ({e}): the CPU share needs cgroup v1's cpu controller, writable",
                cpu.display()
            )
        })?;
        let mut sandbox = Self { cpu, memory: None };
        sandbox.set_cpu(limits)?;
        let Some(mb) = limits.memory_mb else { return Ok(sandbox) };
        let memory = Path::new(MEMORY_ROOT).join(PARENT).join(name);
        std::fs::create_dir_all(&memory).map_err(|e| format!("cannot create the cgroup {} ({e})", memory.display()))?;
        let bytes = (mb * 1024 * 1024).to_string();
        // Lower the swap-inclusive limit first when shrinking, raise it last when growing: the
        // kernel keeps memsw >= memory.
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        let _ = write(&memsw, "-1");
        write(&memory.join("memory.limit_in_bytes"), &bytes)?;
        if memsw.exists() {
            write(&memsw, &bytes)?;
        }
        // A fresh peak and OOM count for this size.
        let _ = write(&memory.join("memory.max_usage_in_bytes"), "0");
        sandbox.memory = Some(memory);
        Ok(sandbox)
    }

    /// Sets the CPU share.
    pub fn set_cpu(&self, limits: Limits) -> Result<(), String> {
        // The quota must fit the period: widen first, then set.
        write(&self.cpu.join("cpu.cfs_quota_us"), "-1")?;
        write(&self.cpu.join("cpu.cfs_period_us"), &(limits.period_ms * 1_000).to_string())?;
        if let Some(quota) = limits.quota_us() {
            write(&self.cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            let set = read_u64(&self.cpu.join("cpu.cfs_quota_us"));
            if set != Some(quota) {
                return Err(format!("the CPU quota of {} reads {set:?}, not {quota}", self.cpu.display()));
            }
        }
        Ok(())
    }

    /// Makes `command`'s child join the groups before `exec`. Keep the returned [`Attach`] until
    /// the child is spawned: the child writes itself into the groups through its descriptors.
    pub fn confine(&self, command: &mut tokio::process::Command) -> Result<Attach, String> {
        let attach = self.attach_files()?;
        let fds = attach.fds();
        // SAFETY: the closure only calls write(2) on descriptors opened above (see `join`); it
        // allocates nothing between fork and exec.
        unsafe { command.pre_exec(move || join(&fds)) };
        Ok(attach)
    }

    /// The groups' `cgroup.procs`, open for the child to write itself into before `exec`.
    pub fn attach_files(&self) -> Result<Attach, String> {
        let open = |dir: &Path| {
            let path = dir.join("cgroup.procs");
            File::options().write(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let mut files = vec![open(&self.cpu)?];
        if let Some(memory) = &self.memory {
            files.push(open(memory)?);
        }
        Ok(Attach { files })
    }

    /// The group's peak memory (`memory.max_usage_in_bytes`: resident memory and page cache
    /// charged to it), in KiB.
    pub fn peak_memory_kib(&self) -> Option<u64> {
        read_u64(&self.memory.as_ref()?.join("memory.max_usage_in_bytes")).map(|bytes| bytes / 1024)
    }

    /// Out-of-memory kills in the group (`oom_kill` of `memory.oom_control`).
    pub fn oom_kills(&self) -> u64 {
        let Some(memory) = &self.memory else { return 0 };
        let text = std::fs::read_to_string(memory.join("memory.oom_control")).unwrap_or_default();
        text.lines().find_map(|line| line.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }

    /// CPU time the group was throttled for (`throttled_time` of `cpu.stat`).
    pub fn throttled(&self) -> Duration {
        let text = std::fs::read_to_string(self.cpu.join("cpu.stat")).unwrap_or_default();
        let ns = text.lines().find_map(|line| line.strip_prefix("throttled_time ")).and_then(|n| n.trim().parse().ok());
        Duration::from_nanos(ns.unwrap_or(0))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Fails while a process is still in the group; the next run resets it instead.
        let _ = std::fs::remove_dir(&self.cpu);
        if let Some(memory) = &self.memory {
            let _ = std::fs::remove_dir(memory);
        }
    }
}

/// What a child writes before `exec` to join its groups.
pub struct Attach {
    files: Vec<File>,
}

impl Attach {
    /// The file descriptors, for [`join`] in the child.
    pub fn fds(&self) -> Vec<RawFd> {
        self.files.iter().map(AsRawFd::as_raw_fd).collect()
    }
}

/// Moves the calling process into each group (`0` is "the writer" in `cgroup.procs`). Runs
/// between `fork` and `exec`: no allocation, only `write(2)`.
pub fn join(fds: &[RawFd]) -> std::io::Result<()> {
    for &fd in fds {
        // SAFETY: writes one byte from a static buffer to a descriptor the parent opened and
        // keeps open until the child is spawned.
        if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_memory_sizes_then_the_quota_is_their_share_of_a_cpu_per_period() {
        assert_eq!(Limits::lambda(1_769, 20).quota_us(), Some(20_000));
        assert_eq!(Limits::lambda(128, 20).quota_us(), Some(1_447));
        assert_eq!(Limits::lambda(3_008, 20).quota_us(), Some(34_007));
        assert_eq!(Limits::lambda(128, 100).quota_us(), Some(7_235));
        assert_eq!(Limits::NO_QUOTA.quota_us(), None);
    }

    /// User + system CPU of this process's reaped children.
    fn children_cpu() -> Duration {
        // SAFETY: getrusage(2) fills the zeroed struct it is given.
        let usage = unsafe {
            let mut usage = std::mem::zeroed::<libc::rusage>();
            assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
            usage
        };
        let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
    }

    #[test]
    fn given_a_128_mb_sandbox_when_a_child_burns_cpu_then_it_gets_its_share_of_a_cpu_and_its_memory_limit() {
        use std::os::unix::process::CommandExt;
        // GIVEN a sandbox with Lambda's 128 MB share of a CPU (7.2 %) and memory limit
        // (Named per process: two test runs at once must not share a group.)
        let name = format!("unit-test-128mb-{}", std::process::id());
        let sandbox = Sandbox::create(&name, Limits::lambda(128, 20)).unwrap();
        let attach = sandbox.attach_files().unwrap();
        let fds = attach.fds();
        // WHEN a child joins it before exec and spends about 60 ms of CPU
        let mut command = std::process::Command::new("sh");
        command.args(["-c", "i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done; cat /proc/self/cgroup"]);
        // SAFETY: as in `Process::spawn`.
        unsafe { command.pre_exec(move || join(&fds)) };
        let (cpu_before, started) = (children_cpu(), std::time::Instant::now());
        let output = command.output().unwrap();
        let wall = started.elapsed();
        drop(attach);
        // THEN it ran in the groups, was throttled, and took many times its CPU time
        let groups = String::from_utf8_lossy(&output.stdout);
        assert!(groups.contains(&format!(":cpu:/serverless-auth-bench/{name}\n")), "{groups}");
        assert!(groups.contains(&format!(":memory:/serverless-auth-bench/{name}\n")), "{groups}");
        assert!(sandbox.throttled() > Duration::ZERO, "never throttled in {wall:?}");
        let usage = children_cpu() - cpu_before;
        assert!(usage > Duration::from_millis(10), "{usage:?}");
        assert!(wall > usage * 5, "{wall:?} of wall time for {usage:?} of CPU: not a 7 % share");
        assert!(sandbox.peak_memory_kib().is_some_and(|kib| kib > 0));
        assert_eq!(sandbox.oom_kills(), 0);
    }

    #[test]
    fn given_a_128_mb_sandbox_when_a_child_touches_256_mib_then_it_is_killed_for_memory() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let sandbox =
            Sandbox::create(&format!("unit-test-oom-{}", std::process::id()), Limits::lambda(128, 20)).unwrap();
        let attach = sandbox.attach_files().unwrap();
        let fds = attach.fds();
        // 256 MiB written byte by byte (`bytes * n` fills them): resident, not lazily zeroed.
        let mut command = std::process::Command::new("python3");
        command.args(["-c", "x = b'a' * (256 << 20)"]);
        // SAFETY: as in `Process::spawn`.
        unsafe { command.pre_exec(move || join(&fds)) };
        let status = command.output().unwrap().status;
        drop(attach);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert!(sandbox.oom_kills() >= 1);
    }

    #[test]
    fn given_point_texts_then_parsed_or_refused() {
        assert_eq!(Limits::parse("256", 20), Ok(Limits::lambda(256, 20)));
        assert_eq!(Limits::parse("128@100", 20), Ok(Limits::lambda(128, 100)));
        assert_eq!(Limits::parse("unlimited", 20), Ok(Limits::NO_QUOTA));
        for bad in ["64", "20000", "abc", "128@0", "128@x", ""] {
            assert!(Limits::parse(bad, 20).is_err(), "{bad}");
        }
        assert_eq!(Limits::lambda(128, 100).label(20), "128 MB @ 100 ms");
        assert_eq!(Limits::lambda(128, 20).label(20), "128 MB");
    }
}
