//! Generator health: whether squall itself was the bottleneck (then latencies partly
//! measure the generator). Judged from the generator's own lateness (the scheduling-lag
//! probe and sends that left after their intended time), its stalls, missed sends, file
//! descriptors and the CPU of squall's own threads; never from the whole process's CPU,
//! which with `--serve` includes the bundled server.

use std::time::Instant;

/// CPU share of the available cores at or above which a tick counts as busy.
pub const CPU_BUSY_FRACTION: f64 = 0.9;
/// Seconds of consecutive busy ticks before the generator counts as saturated.
pub const CPU_BUSY_SECS: f64 = 3.0;
/// Scheduling-lag p99 above which the generator counts as saturated, µs (10 ms).
pub const LAG_P99_LIMIT_US: u64 = 10_000;
/// Own CPU (cores) from which lateness counts as the generator's own overload; below it,
/// lateness comes from other work on the machine and is a warning, not a verdict.
pub const LATE_CPU_MIN: f64 = 0.5;
/// Lateness at or above which the generator counts as stalled, µs (100 ms): far beyond a
/// busy machine's scheduling delays, well within what a stopped or blocked process shows.
pub const STALL_US: u64 = 100_000;
/// Open files this close to the limit count as exhausted: the next connect may fail.
pub const FD_MARGIN: u64 = 16;

/// Stalls of the generator: lateness of at least [`STALL_US`] beyond the time its thread
/// waited for a CPU (see [`RunDelay`]).
#[derive(Debug, Default, Clone)]
pub struct Stall {
    /// Lateness samples at or above [`STALL_US`].
    pub count: u64,
    /// The longest, µs.
    pub longest_us: u64,
    /// Start of the series bucket the longest one was seen in, s since the start.
    pub at_s: Option<f64>,
    pending: Option<String>,
}

impl Stall {
    /// One series bucket's `count` stalls, the longest `longest_us`; the bucket started
    /// at `start_s`.
    pub fn observe(&mut self, count: u64, longest_us: u64, start_s: f64) {
        if count == 0 {
            return;
        }
        self.count += count;
        // Warn about the first stall and each longer one: a handful of lines at most.
        if longest_us > self.longest_us {
            self.longest_us = longest_us;
            self.at_s = Some(start_s);
            self.pending = Some(format!(
                "generator stalled {} (seen at t={start_s:.0}s): it could not send or read \
                 meanwhile, so latencies and rates around then measure squall",
                crate::results::units::fmt_us(longest_us as f64)
            ));
        }
    }

    /// The warning raised by the last observation, once.
    pub fn warning(&mut self) -> Option<String> {
        self.pending.take()
    }
}

/// The calling thread's time spent runnable but waiting for a CPU, from
/// `/proc/thread-self/schedstat` (its second field, ns). Lateness explained by it is the
/// machine's other work; the rest is squall's own (stopped, blocked, or busy).
#[derive(Debug)]
pub struct RunDelay(Option<std::fs::File>);

impl RunDelay {
    /// Opens the calling thread's schedstat (`None` inside when the kernel has none).
    pub fn open() -> Self {
        RunDelay(std::fs::File::open("/proc/thread-self/schedstat").ok())
    }

    /// Runqueue wait so far, µs. One `pread` of a kept-open file.
    pub fn read_us(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let f = self.0.as_ref()?;
        let mut buf = [0u8; 96];
        let n = f.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        let ns: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
        Some(ns / 1_000)
    }
}

/// File descriptors in use against the limit, sampled as the run goes.
#[derive(Debug, Default, Clone, Copy)]
pub struct FdWatch {
    /// Most open files seen, a lower bound of the true count.
    pub peak: Option<u64>,
    /// The soft limit (`RLIMIT_NOFILE`).
    pub limit: Option<u64>,
}

impl FdWatch {
    /// One sample: `open` files (lower bound) of `limit`.
    pub fn note(&mut self, open: u64, limit: u64) {
        self.peak = Some(self.peak.map_or(open, |p| p.max(open)));
        self.limit = Some(limit);
    }

    /// Whether the open files came within [`FD_MARGIN`] of the limit.
    pub fn exhausted(&self) -> bool {
        matches!((self.peak, self.limit), (Some(p), Some(l)) if p + FD_MARGIN >= l)
    }
}

/// Open files (a lower bound: the lowest free descriptor number, since descriptors are
/// handed out lowest first) and the soft limit. One `fcntl` and one `close`: cheap
/// enough every tick even with a million sockets, unlike listing `/proc/self/fd`.
/// When no descriptor is free at all, open = limit.
pub fn open_fds() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct we pass; F_DUPFD_CLOEXEC duplicates
    // stdin's descriptor number 0 onto the lowest free one, which we close at once.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return None;
        }
        let fd = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0);
        if fd < 0 {
            let emfile = std::io::Error::last_os_error().raw_os_error() == Some(libc::EMFILE);
            return emfile.then_some((r.rlim_cur, r.rlim_cur));
        }
        libc::close(fd);
        Some((fd as u64, r.rlim_cur))
    }
}

/// Whether lateness can be squall's own doing: its CPU reached [`LATE_CPU_MIN`] cores
/// (or was not measured, when nothing rules it out).
fn own_load(cpu: Option<f64>) -> bool {
    cpu.is_none_or(|c| c >= LATE_CPU_MIN)
}

/// The reason [`verdict`] gives for missed sends, after their count. A capacity search
/// tells it from the others: missed sends may be the target's doing (slow replies holding
/// every slot), the other reasons are the generator's alone.
pub const MISSED_REASON: &str = "planned sends missed (behind schedule or in-flight window full)";

/// What a run's generator health is judged from.
#[derive(Debug, Clone, Copy)]
pub struct Judged<'a> {
    /// Lateness p99 over the run, µs.
    pub lag_p99_us: u64,
    /// Highest own CPU of a tick, cores.
    pub cpu_peak: Option<f64>,
    /// Stalls seen.
    pub stall: &'a Stall,
    /// Planned sends missed.
    pub missed: u64,
    /// Open files against the limit.
    pub fds: &'a FdWatch,
    /// Own CPU stayed busy for [`CPU_BUSY_SECS`].
    pub cpu_busy: bool,
}

/// Why a run's generator counts as saturated; empty when it kept up.
pub fn verdict(j: Judged<'_>) -> Vec<String> {
    let Judged {
        lag_p99_us,
        cpu_peak,
        stall,
        missed,
        fds,
        cpu_busy,
    } = j;
    let fmt = |us: u64| crate::results::units::fmt_us(us as f64);
    let mut why = Vec::new();
    if stall.count > 0 {
        why.push(format!(
            "stalled: longest {}, {} stall(s) counted over the worker threads",
            fmt(stall.longest_us),
            stall.count
        ));
    }
    if lag_p99_us > LAG_P99_LIMIT_US && own_load(cpu_peak) {
        why.push(format!("lateness p99 {}", fmt(lag_p99_us)));
    }
    if missed > 0 {
        why.push(format!("{missed} {MISSED_REASON}"));
    }
    if fds.exhausted() {
        why.push(format!(
            "file descriptors exhausted ({} of {})",
            fds.peak.unwrap_or(0),
            fds.limit.unwrap_or(0)
        ));
    }
    if cpu_busy {
        why.push("own CPU busy for 3 s or more".into());
    }
    why
}

/// Measures the calling thread's CPU use between calls (squall's own work only).
#[derive(Debug)]
pub struct CpuSampler {
    last_cpu_us: Option<u64>,
    last_wall: Instant,
}

impl Default for CpuSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// CPU time of the calling thread so far, µs.
fn process_cpu_us() -> Option<u64> {
    thread_cpu_ns().map(|ns| ns / 1_000)
}

impl CpuSampler {
    /// Starts measuring now.
    pub fn new() -> Self {
        CpuSampler {
            last_cpu_us: process_cpu_us(),
            last_wall: Instant::now(),
        }
    }

    /// This thread's CPU since the previous sample (or `new`), in cores. `None` when the
    /// clock cannot be read or no time has passed.
    pub fn sample(&mut self) -> Option<f64> {
        self.sample_us().map(|(us, wall)| us as f64 / 1e6 / wall)
    }

    /// This thread's CPU since the previous sample, µs, with the wall time, s.
    pub fn sample_us(&mut self) -> Option<(u64, f64)> {
        let now = Instant::now();
        let cpu = process_cpu_us();
        let wall = now.duration_since(self.last_wall).as_secs_f64();
        let prev = std::mem::replace(&mut self.last_cpu_us, cpu);
        self.last_wall = now;
        let used = cpu?.checked_sub(prev?)?;
        (wall > 0.0).then_some((used, wall))
    }
}

/// Cores this process may use (`available_parallelism`, at least 1).
pub fn available_cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// Whether a run saturated the generator: CPU ≥ 90% of `cores` for ≥ 3 s at a stretch
/// (`cpu` holds `(t, cores used)` per tick), or scheduling-lag p99 above 10 ms while its
/// own CPU reached [`LATE_CPU_MIN`].
pub fn generator_saturated(cpu: &[(f64, Option<f64>)], cores: f64, lag_p99_us: u64) -> bool {
    let mut w = SaturationWatch::new(cores);
    for &(t, c) in cpu {
        w.observe(t, c, None);
    }
    let peak = cpu.iter().filter_map(|c| c.1).reduce(f64::max);
    w.cpu_saturated() || (lag_p99_us > LAG_P99_LIMIT_US && own_load(peak))
}

/// Follows ticks as they come and raises each kind of warning once, while the run goes.
#[derive(Debug, Clone)]
pub struct SaturationWatch {
    cores: f64,
    last_t: f64,
    busy_since: Option<f64>,
    cpu_saturated: bool,
    lag_warned: bool,
    busy_warned: bool,
    warnings: Vec<String>,
}

impl SaturationWatch {
    /// A watch for a generator with `cores` cores available.
    pub fn new(cores: f64) -> Self {
        SaturationWatch {
            cores,
            last_t: 0.0,
            busy_since: None,
            cpu_saturated: false,
            lag_warned: false,
            busy_warned: false,
            warnings: Vec::new(),
        }
    }

    /// Cores the judgement is relative to.
    pub fn cores(&self) -> f64 {
        self.cores
    }

    /// One tick ending at `t` seconds with the interval's CPU (cores) and lag p99 (µs).
    /// Returns a warning when one is raised now.
    pub fn observe(&mut self, t: f64, cpu: Option<f64>, lag_p99_us: Option<u64>) -> Option<String> {
        let start = std::mem::replace(&mut self.last_t, t);
        let mut raised = None;
        match cpu {
            Some(c) if c >= CPU_BUSY_FRACTION * self.cores => {
                let since = *self.busy_since.get_or_insert(start);
                if t - since >= CPU_BUSY_SECS - 1e-9 && !self.cpu_saturated {
                    self.cpu_saturated = true;
                    raised = Some(format!(
                        "generator CPU at {c:.2} of {:.0} cores since t={since:.0}s: \
                         latencies may measure squall, not the target",
                        self.cores
                    ));
                }
            }
            _ => self.busy_since = None,
        }
        if let Some(lag_us) = lag_p99_us.filter(|&l| l > LAG_P99_LIMIT_US) {
            // A stall has its own warning; this one is about steady lateness.
            let lag = crate::results::units::fmt_us(lag_us as f64);
            if own_load(cpu) {
                if !self.lag_warned && raised.is_none() {
                    self.lag_warned = true;
                    raised = Some(format!(
                        "scheduling lag p99 {lag} at t={t:.0}s: the generator is overloaded"
                    ));
                }
            } else if !self.busy_warned && raised.is_none() && lag_us < STALL_US {
                // Late while nearly idle: other work on the machine delayed squall.
                self.busy_warned = true;
                raised = Some(format!(
                    "scheduling lag p99 {lag} at t={t:.0}s while squall used {:.2} cores: \
                     the machine is busy with other work; latencies include up to {lag} of it",
                    cpu.unwrap_or(0.0)
                ));
            }
        }
        if let Some(w) = &raised {
            self.warnings.push(w.clone());
        }
        raised
    }

    /// Whether CPU stayed busy for at least [`CPU_BUSY_SECS`] at some point.
    pub fn cpu_saturated(&self) -> bool {
        self.cpu_saturated
    }

    /// Adds a warning raised elsewhere (a stall), in order with the others.
    pub fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    /// Every warning raised so far.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// The process's peak resident memory so far, KiB (`VmHWM` in `/proc/self/status`);
/// `None` where there is no such file. It is this process's own mark, set afresh by `exec`,
/// unlike `getrusage`'s `ru_maxrss`, which a child spawned by `vfork` inherits from its parent.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// CPU time the calling thread has used so far, ns (`CLOCK_THREAD_CPUTIME_ID`): squall's
/// own threads only, never the bundled server's or anyone else's.
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into the struct we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_resident_memory_is_read_and_grows_with_what_is_touched() {
        let before = peak_rss_kib().expect("Linux has /proc/self/status");
        assert!(before > 0);
        // 64 MiB written page by page is resident at once: the mark must rise by most of it.
        let touched = vec![1u8; 64 << 20];
        std::hint::black_box(&touched);
        let after = peak_rss_kib().unwrap();
        assert!(
            after >= before.max(64 << 10),
            "{before} KiB, then {after} KiB"
        );
    }

    #[test]
    fn busy_for_three_seconds_saturates() {
        let busy = |ts: &[f64]| ts.iter().map(|&t| (t, Some(1.9))).collect::<Vec<_>>();
        assert!(!generator_saturated(&busy(&[1.0, 2.0]), 2.0, 0));
        assert!(generator_saturated(&busy(&[1.0, 2.0, 3.0]), 2.0, 0));
        let broken = vec![
            (1.0, Some(1.9)),
            (2.0, Some(0.5)),
            (3.0, Some(1.9)),
            (4.0, Some(1.9)),
        ];
        assert!(!generator_saturated(&broken, 2.0, 0));
        assert!(generator_saturated(&[], 2.0, 10_001));
        assert!(!generator_saturated(&[], 2.0, 10_000));
        // Late while squall itself is nearly idle: the machine is busy, not squall.
        assert!(!generator_saturated(&[(1.0, Some(0.05))], 2.0, 30_000));
        assert!(generator_saturated(&[(1.0, Some(0.6))], 2.0, 30_000));
    }

    #[test]
    fn lateness_at_tiny_cpu_warns_of_a_busy_machine_only() {
        let mut w = SaturationWatch::new(2.0);
        let raised = w.observe(1.0, Some(0.03), Some(40_000)).unwrap();
        assert!(raised.contains("busy with other work"), "{raised}");
        assert!(!w.cpu_saturated());
        // Seconds of lateness are a stall (warned by `Stall`), never "the machine is busy".
        let mut w = SaturationWatch::new(2.0);
        assert!(w.observe(1.0, Some(0.03), Some(2_000_000)).is_none());
    }

    #[test]
    fn stalls_are_counted_with_the_longest() {
        let mut st = Stall::default();
        st.observe(0, 0, 1.0);
        assert!(st.warning().is_none());
        st.observe(2, 480_000, 3.0);
        assert_eq!(st.count, 2);
        assert!(st.longest_us == 480_000 && st.at_s == Some(3.0));
        assert!(st.warning().unwrap().contains("stalled"));
        assert!(st.warning().is_none());
        let why = verdict(Judged {
            lag_p99_us: 900,
            cpu_peak: Some(0.01),
            stall: &st,
            missed: 0,
            fds: &FdWatch::default(),
            cpu_busy: false,
        });
        assert_eq!(why.len(), 1, "{why:?}");
    }

    #[test]
    fn run_delay_grows_while_threads_compete() {
        let d = RunDelay::open();
        let Some(before) = d.read_us() else {
            return; // a kernel without schedstat: lateness then counts in full
        };
        assert!(d.read_us().unwrap() >= before);
    }

    #[test]
    fn fd_headroom_is_read_and_judged() {
        let (open, limit) = open_fds().expect("fcntl and getrlimit work on Linux");
        assert!(open >= 3 && open < limit, "{open} of {limit}");
        let mut f = FdWatch::default();
        f.note(10, 1024);
        assert!(!f.exhausted());
        f.note(1010, 1024);
        assert!(f.exhausted());
    }

    #[test]
    fn warns_once_per_kind() {
        let mut w = SaturationWatch::new(2.0);
        assert!(w.observe(1.0, Some(1.0), Some(20_000)).is_some());
        assert!(w.observe(2.0, Some(1.0), Some(20_000)).is_none());
        for t in 3..6 {
            w.observe(t as f64, Some(2.0), None);
        }
        assert_eq!(w.warnings().len(), 2);
        assert!(w.warnings()[1].contains("CPU"));
    }

    #[test]
    fn sampler_counts_only_its_own_thread() {
        // Another thread of the process (as the `--serve` server's are) burns a core
        // while this one waits: none of it is this thread's.
        let mut s = CpuSampler::new();
        std::thread::spawn(|| {
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed().as_millis() < 200 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
            std::hint::black_box(x);
        })
        .join()
        .unwrap();
        let c = s.sample().expect("the thread CPU clock works on Linux");
        assert!(c < 0.2, "{c} cores counted for a thread that only waited");
    }

    #[test]
    fn sampler_reports_cores() {
        let mut s = CpuSampler::new();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 30 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let c = s.sample().expect("the thread CPU clock works on Linux");
        assert!(c > 0.0 && c < 64.0, "{c}");
    }
}
