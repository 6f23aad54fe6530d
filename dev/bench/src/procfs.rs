//! Process figures from `/proc`: CPU time (user + system, all threads) and peak RSS.

/// `USER_HZ`: the unit of `utime`/`stime` in `/proc/<pid>/stat`; 100 on every Linux architecture
/// Lambda runs (x86_64, arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU time of the whole process (every thread), in milliseconds, from fields 14
/// and 15 of `/proc/<pid>/stat`.
pub fn cpu_ms(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 * 1000.0 / TICKS_PER_SECOND)
}

/// CPU time of the process's live threads so far, in milliseconds to the microsecond: the sum of
/// `se.sum_exec_runtime` in `/proc/<pid>/task/<tid>/sched` (the scheduler's debug file). `stat`
/// counts in 10 ms ticks, too coarse for an init of a few milliseconds. Threads that have exited
/// are not counted, including one that exits between the listing and the read of its file;
/// `None` where the kernel has no such file.
pub fn exec_runtime_ms(pid: &str) -> Option<f64> {
    let mut total = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(sched) = std::fs::read_to_string(task.path().join("sched")) else { continue };
        let line = sched.lines().find(|line| line.starts_with("se.sum_exec_runtime"))?;
        *total.get_or_insert(0.0) += line.rsplit(':').next()?.trim().parse::<f64>().ok()?;
    }
    total
}

/// Peak resident set size (`VmHWM` in `/proc/<pid>/status`), in KiB.
pub fn peak_rss_kib(pid: &str) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resident set size now (`VmRSS`), in KiB.
pub fn rss_kib(pid: &str) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// Threads of the process (`Threads` in `/proc/<pid>/status`).
pub fn threads(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok())
}

fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id().to_string();
        assert!(cpu_ms(&pid).is_some());
        assert!(peak_rss_kib(&pid).is_some_and(|kib| kib > 0));
        assert!(cpu_ms("0").is_none());
    }

    #[test]
    fn given_a_busy_thread_then_its_exec_runtime_grows_by_about_the_cpu_it_burnt() {
        let pid = std::process::id().to_string();
        let before = exec_runtime_ms(&pid).expect("/proc/<pid>/task/<tid>/sched");
        // Spin until this thread has had 30 ms of CPU by its own clock: a wall-clock spin can get
        // less when the other tests' threads take the CPUs.
        let thread_cpu_ms = || {
            let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime writes the timespec it is given, which lives on this stack.
            assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) }, 0);
            now.tv_sec as f64 * 1000.0 + now.tv_nsec as f64 / 1e6
        };
        let started = thread_cpu_ms();
        let mut x = 0u64;
        while thread_cpu_ms() - started < 30.0 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let burnt = exec_runtime_ms(&pid).unwrap() - before;
        // Other test threads may run too: at least the 30 ms spun.
        assert!(burnt >= 25.0, "{burnt} ms");
        assert!(exec_runtime_ms("0").is_none());
    }
}
