//! How busy the rest of the machine was while `fluoro bench` timed its frames: the share of
//! CPU time the hypervisor gave to other guests (steal) and the share other processes used.
//! On a shared virtual machine either can move a run's times by tens of percent, so the
//! report says so instead of leaving the reader to guess. Linux only (`/proc`); elsewhere
//! the readings are `None` and the report is left out.

/// Cumulative CPU time counters of the whole machine (all CPUs together) and of this
/// process, in the kernel's clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTicks {
    /// Time spent running anything: user, nice, system, irq, softirq.
    busy: u64,
    /// Idle and I/O wait.
    idle: u64,
    /// Time the hypervisor ran other guests while this machine's CPUs wanted to run.
    steal: u64,
    /// This process's user and system time.
    own: u64,
}

/// The share of the machine's CPU time between two readings that was stolen by the
/// hypervisor, and that went to processes other than this one (both 0..=1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostLoad {
    /// Steal time over all CPU time (busy, idle and stolen).
    pub steal_frac: f64,
    /// Other processes' busy time over all CPU time.
    pub others_frac: f64,
}

impl CpuTicks {
    /// Reads `/proc/stat` and `/proc/self/stat`; `None` where either cannot be read or
    /// parsed.
    pub fn now() -> Option<Self> {
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse(&machine, &own)
    }

    /// The load between `self` (earlier) and `later`; `None` if no time passed or a
    /// counter went backwards.
    pub fn until(&self, later: &CpuTicks) -> Option<HostLoad> {
        let busy = later.busy.checked_sub(self.busy)?;
        let idle = later.idle.checked_sub(self.idle)?;
        let steal = later.steal.checked_sub(self.steal)?;
        let own = later.own.checked_sub(self.own)?;
        let total = (busy + idle + steal) as f64;
        (total > 0.0).then(|| HostLoad {
            steal_frac: steal as f64 / total,
            // tick rounding can make this process's share exceed the machine's busy time
            others_frac: (busy.saturating_sub(own) as f64 / total).clamp(0.0, 1.0),
        })
    }
}

/// The aggregate `cpu` line of `/proc/stat` (`user nice system idle iowait irq softirq
/// steal [guest guest_nice]`; guest time is already inside user and nice) and this
/// process's `utime` and `stime` from `/proc/self/stat` (fields 14 and 15, counted after
/// the parenthesised command name, which may itself hold spaces).
fn parse(machine: &str, own: &str) -> Option<CpuTicks> {
    let line = machine.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 8 {
        return None;
    }
    let fields: Vec<&str> = own.get(own.rfind(')')? + 1..)?.split_whitespace().collect();
    // after the name: field 3 (state) is index 0, so utime (14) is 11 and stime (15) 12
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(CpuTicks {
        busy: v[0] + v[1] + v[2] + v[5] + v[6],
        idle: v[3] + v[4],
        steal: v[7],
        own: utime + stime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str =
        "4242 (fluoro bench) R 1 4242 4242 0 -1 4194304 900 0 0 0 150 30 0 0 20 0 3 0";

    #[test]
    fn parses_the_machine_and_process_counters() {
        let machine = "cpu  1000 5 200 700 20 3 7 65 0 0\ncpu0 500 2 100 350 10 1 3 30 0 0\n";
        let t = parse(machine, OWN).expect("parses");
        assert_eq!(
            t,
            CpuTicks {
                busy: 1000 + 5 + 200 + 3 + 7,
                idle: 700 + 20,
                steal: 65,
                own: 150 + 30,
            }
        );
        assert!(parse("cpu  1 2 3", OWN).is_none(), "too few fields");
        assert!(parse("intr 5\n", OWN).is_none(), "no cpu line");
        assert!(
            parse(machine, "4242 (x) R 1").is_none(),
            "short process line"
        );
    }

    #[test]
    fn shares_of_steal_and_of_other_processes() {
        let a = CpuTicks {
            busy: 1000,
            idle: 500,
            steal: 100,
            own: 400,
        };
        // 200 ticks: 120 busy (90 of them ours), 50 idle, 30 stolen
        let b = CpuTicks {
            busy: 1120,
            idle: 550,
            steal: 130,
            own: 490,
        };
        let l = a.until(&b).expect("time passed");
        assert!((l.steal_frac - 30.0 / 200.0).abs() < 1e-12, "{l:?}");
        assert!((l.others_frac - 30.0 / 200.0).abs() < 1e-12, "{l:?}");
        assert!(b.until(&a).is_none(), "counters going backwards");
        assert!(a.until(&a).is_none(), "no time passed");
        let mine_rounded_up = CpuTicks { own: 700, ..b };
        assert_eq!(a.until(&mine_rounded_up).map(|l| l.others_frac), Some(0.0));
    }

    #[test]
    fn reads_this_machine() {
        if cfg!(target_os = "linux") {
            let a = CpuTicks::now().expect("/proc is readable on Linux");
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            let b = CpuTicks::now().expect("readable");
            assert!(b.busy >= a.busy && b.own >= a.own, "{a:?} {b:?}");
        }
    }
}
