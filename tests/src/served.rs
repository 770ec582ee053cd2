//! A gateway in its own process (`joinery serve`), for what an in-process gateway cannot
//! show: the CPU the gateway alone spends, apart from the client and upstreams driving it.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

/// A `joinery serve` process on a built project; killed when dropped.
pub struct ServedGateway {
    child: Child,
    /// Its `/graphql` URL.
    pub url: String,
}

impl ServedGateway {
    /// Serves the built project in `dir` with `binary` (a `joinery` command line). The
    /// project's config must listen on `127.0.0.1:0` and log JSON at `info` or lower: the
    /// address it bound is read from its log.
    pub fn start(binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .arg("serve")
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Drains the log for the process's life, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                // The GraphQL listener's line (the metrics listener logs an address too).
                let address = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .filter(|_| line.contains("serving GraphQL"))
                    .and_then(|v| Some(v["address"].as_str()?.to_string()));
                if let Some(address) = address {
                    let _ = tx.send(address);
                }
            }
        });
        let mut served = Self {
            child,
            url: String::new(),
        };
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .context("the gateway did not log the address it serves on")?;
        served.url = format!("http://{address}/graphql");
        Ok(served)
    }

    /// Runs `joinery build` with `binary` in the project `dir`; fails with what it printed.
    pub fn build(binary: &Path, dir: &Path) -> anyhow::Result<()> {
        let built = Command::new(binary)
            .arg("build")
            .current_dir(dir)
            .output()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        anyhow::ensure!(
            built.status.success(),
            "joinery build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        Ok(())
    }

    /// Context switches so far of the process's threads named `name` (voluntary or not).
    pub fn switches_of(&self, name: &str) -> u64 {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    /// The CPU time the process has spent so far, to the nanosecond: the sum over its threads
    /// of the scheduler's run time (`/proc/<pid>/task/*/schedstat`), where `/proc/<pid>/stat`
    /// counts in 10 ms ticks.
    pub fn cpu(&self) -> Duration {
        let tasks = format!("/proc/{}/task", self.child.id());
        let nanos: u64 = std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Duration::from_nanos(nanos)
    }
}

impl Drop for ServedGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
