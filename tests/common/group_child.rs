//! A helper process of a test (moto, the fake cloud endpoints) in its own process group, its
//! output in a log file. The whole group is SIGKILLed and reaped when dropped, also when the
//! test panics, so nothing it started outlives the test.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct GroupChild {
    child: Child,
    log: PathBuf,
}

impl GroupChild {
    /// Spawns `cmd` (stdin closed, stdout and stderr to `log`) as the leader of a new process
    /// group. The error is the spawn's own, so that callers can tell a missing program apart.
    pub fn spawn(cmd: &mut Command, log: &Path) -> std::io::Result<GroupChild> {
        let out = std::fs::File::create(log)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", log.display())))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()?;
        Ok(GroupChild {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Waits up to 30 s, polling every 100 ms, until `ready` holds.
    pub fn wait_until(&self, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready() {
            if Instant::now() > deadline {
                return Err(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group of our own child (process_group(0) made its pid
        // the group id), not yet reaped.
        unsafe {
            kill(-(self.child.id() as i32), 9);
        }
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
