//! CPU and memory of the services' main processes and of stackctl itself, sampled once a
//! second with sysinfo (only the pids we own are read).

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One process's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Percent of one core since the previous sample.
    pub cpu_percent: f32,
    /// CPU time since the process started, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
}

/// The sampler, with the last figures per service index.
#[derive(Debug)]
pub struct Resources {
    /// `None` when the process table cannot be read: figures are then simply not shown.
    system: Option<System>,
    services: Vec<Option<(u32, Usage)>>,
    own: Option<Usage>,
}

impl Resources {
    /// Nothing sampled yet.
    pub fn new() -> Self {
        let system = System::new()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read process figures"))
            .ok();
        Self {
            system,
            services: Vec::new(),
            own: None,
        }
    }

    /// Samples the processes `pids` (indexed like the services) and stackctl itself.
    pub fn sample(&mut self, pids: &[Option<u32>]) {
        let Some(system) = self.system.as_mut() else {
            return;
        };
        let own = std::process::id();
        let mut wanted: Vec<Pid> = pids.iter().flatten().map(|&p| Pid::from_u32(p)).collect();
        wanted.push(Pid::from_u32(own));
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        system.refresh_processes_specifics(ProcessesToUpdate::Some(&wanted), true, kind);
        let usage = |pid: u32| {
            system.process(Pid::from_u32(pid)).map(|p| Usage {
                cpu_percent: p.cpu_usage(),
                cpu_seconds: p.accumulated_cpu_time() as f64 / 1000.0,
                rss_bytes: p.memory(),
            })
        };
        self.services = pids
            .iter()
            .map(|pid| pid.and_then(|p| usage(p).map(|u| (p, u))))
            .collect();
        self.own = usage(own);
    }

    /// The last figures of service `index`, if they belong to its current process `pid`.
    pub fn get(&self, index: usize, pid: Option<u32>) -> Option<Usage> {
        match (self.services.get(index).copied().flatten(), pid) {
            (Some((sampled, usage)), Some(pid)) if sampled == pid => Some(usage),
            _ => None,
        }
    }

    /// stackctl's own figures.
    pub fn own(&self) -> Option<Usage> {
        self.own
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_our_own_process_and_ignores_stale_pids() {
        let mut r = Resources::new();
        let me = std::process::id();
        r.sample(&[Some(me), None]);
        let usage = r.get(0, Some(me)).expect("our own process is readable");
        assert!(usage.rss_bytes > 0);
        assert!(r.own().is_some());
        assert_eq!(
            r.get(0, Some(me + 1)),
            None,
            "figures of another pid are not shown"
        );
        assert_eq!(r.get(1, None), None);
    }
}
