//! `joinery` in its own process (`serve`, `dev`), for what an in-process gateway cannot show:
//! signals and reloads, exported traces at shutdown, and the CPU the gateway alone spends apart
//! from the client and upstreams driving it.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// A running `joinery` command and the lines of its log; killed when dropped.
pub struct JoineryProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

/// Runs `f`, which blocks, without starving the tasks of a multi-threaded runtime it is called
/// from (upstreams the gateway talks to may run there).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl JoineryProcess {
    /// Runs `binary` (a `joinery` command line) with `args` in the project `dir`.
    pub fn spawn(binary: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        // Drains the log for the process's life, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        Ok(Self { child, lines })
    }

    /// Runs `joinery build` with `binary` in the project `dir`; fails with what it printed.
    pub fn build(binary: &Path, dir: &Path) -> anyhow::Result<()> {
        let built = blocking(|| Command::new(binary).arg("build").current_dir(dir).output())
            .with_context(|| format!("cannot run {}", binary.display()))?;
        anyhow::ensure!(
            built.status.success(),
            "joinery build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        Ok(())
    }

    /// The next log line for which `wanted` holds, waiting up to `timeout`; fails with the
    /// lines passed over.
    pub fn wait_for(
        &self,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let mut lines = self.lines_until(timeout, wanted)?;
        Ok(lines.pop().expect("the wanted line is the last"))
    }

    /// The lines of the log up to the first that `wanted` accepts, that one last, waiting up to
    /// `timeout` for it.
    pub fn lines_until(
        &self,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match blocking(|| self.lines.recv_timeout(left)) {
                Ok(line) if wanted(&line) => {
                    seen.push(line);
                    return Ok(seen);
                }
                Ok(line) => seen.push(line),
                Err(_) => {
                    anyhow::bail!("no such log line in {timeout:?}; got:\n{}", seen.join("\n"))
                }
            }
        }
    }

    /// The process's id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `name` (`HUP`, `TERM`, …) to the process.
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        let sent = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -{name} failed");
        Ok(())
    }

    /// Waits for the process to end.
    pub fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        Ok(blocking(|| self.child.wait())?)
    }

    /// The CPU time the process has spent so far, to the nanosecond: the sum over its threads
    /// of the scheduler's run time (`/proc/<pid>/task/*/schedstat`), where `/proc/<pid>/stat`
    /// counts in 10 ms ticks.
    pub fn cpu(&self) -> Duration {
        let nanos: u64 = self
            .tasks()
            .filter_map(|task| std::fs::read_to_string(task.join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Duration::from_nanos(nanos)
    }

    /// Context switches so far of the process's threads named `name` (voluntary or not).
    /// Panics when no thread has that name (Linux keeps 15 bytes of a thread's name), so that
    /// a count of a misnamed thread cannot pass for zero.
    pub fn switches_of(&self, name: &str) -> u64 {
        let named: Vec<_> = self
            .tasks()
            .filter(|task| {
                std::fs::read_to_string(task.join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .collect();
        assert!(
            !named.is_empty(),
            "no thread of the process is named {name:?}"
        );
        named
            .iter()
            .filter_map(|task| std::fs::read_to_string(task.join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    fn tasks(&self) -> impl Iterator<Item = std::path::PathBuf> {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .into_iter()
            .flatten()
            .flatten()
            .map(|task| task.path())
    }
}

impl Drop for JoineryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `joinery serve` on a built project, once it serves.
pub struct ServedGateway {
    /// The process and its log (the lines after the one saying where it serves).
    pub process: JoineryProcess,
    /// Its `/graphql` URL.
    pub url: String,
    /// The lines it logged before it served.
    pub started: Vec<String>,
}

impl ServedGateway {
    /// Serves the built project in `dir` with `binary` (`serve` and `args`), and waits for the
    /// log line saying where (the project's config picks the address, e.g. `127.0.0.1:0`).
    pub fn start(binary: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        Self::serving(JoineryProcess::spawn(
            binary,
            dir,
            &[&["serve"], args].concat(),
        )?)
    }

    /// As [`ServedGateway::start`], run by `wrapper` (a command and its arguments, to which
    /// `binary serve` is appended), e.g. `prlimit --as=N --` or `valgrind`.
    pub fn start_under(wrapper: &[&str], binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let (program, args) = wrapper.split_first().context("no wrapper command")?;
        let binary = binary.to_str().context("the binary's path is not UTF-8")?;
        let args = [args, &[binary, "serve"]].concat();
        Self::serving(JoineryProcess::spawn(Path::new(program), dir, &args)?)
    }

    fn serving(process: JoineryProcess) -> anyhow::Result<Self> {
        let mut started = process.lines_until(Duration::from_secs(30), |l| {
            l.contains("serving GraphQL at http://")
        })?;
        let line = started.pop().expect("the serving line is the last");
        let url = line
            .split("serving GraphQL at ")
            .nth(1)
            .and_then(|rest| rest.split(['"', ' ']).next())
            .context("the serving line names no URL")?
            .to_string();
        Ok(Self {
            process,
            url,
            started,
        })
    }
}
