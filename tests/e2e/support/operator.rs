//! The operator under test as a separate process: `bascule run` against the hub.
//!
//! [`Operator::start`] runs the `bascule` binary built for this test
//! (`env!("CARGO_BIN_EXE_bascule")`, or `$BASCULE_E2E_OPERATOR_BINARY`) with `KUBECONFIG` set to the hub's kubeconfig, in its own
//! process group, stdout and stderr appended to a log file under the run directory
//! (`DIR/operator-logs/LABEL.log`). The guard:
//!
//! * kills the whole process group (SIGKILL, by process group id, never by name) when dropped —
//!   at the end of a trial, on an early return and during a panic; on a panic it also prints the
//!   log's tail;
//! * is backed by `PR_SET_PDEATHSIG`: the child is spawned from one long-lived thread, so the
//!   kernel SIGKILLs it when the test process dies for any reason (SIGKILL, the signal handler's
//!   `exit`), and no orphaned operator keeps talking to torn-down clusters;
//! * can [`stop`](Operator::stop) it with SIGTERM (as Kubernetes does), [`kill`](Operator::kill)
//!   it with SIGKILL (mid-failover crashes), and [`restart`](Operator::restart) it with the same
//!   arguments, appending to the same log;
//! * reports a crash at once ([`Operator::ensure_running`]) instead of letting a trial time out,
//!   and appends the log's tail to a failed trial's message ([`Operator::annotate`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Harness, TestResult};

/// The `bascule` binary under test: `$BASCULE_E2E_OPERATOR_BINARY` if set (e2e/bench-fleet sets
/// it to the release build, as the chart ships it), else the debug build made for this test.
pub fn operator_binary() -> String {
    std::env::var("BASCULE_E2E_OPERATOR_BINARY")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_bascule").to_string())
}

/// How to start the operator.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// `--namespace`: where the MemberClusters' kubeconfig Secrets are.
    pub namespace: String,
    /// Names the log file (`DIR/operator-logs/LABEL.log`); made unique per run.
    pub label: String,
    /// `BASCULE_LOG`; default: the test's own `BASCULE_LOG`, else `info,bascule=debug`.
    pub log_filter: Option<String>,
    /// More arguments after `run --namespace NS`.
    pub extra_args: Vec<String>,
    /// `KUBECONFIG` for the operator; default: the harness' hub kubeconfig (cluster admin).
    pub kubeconfig: Option<PathBuf>,
    /// More environment variables (e.g. the AWS credential chain's), never logged.
    pub env: Vec<(String, String)>,
}

impl OperatorOptions {
    pub fn new(namespace: &str, label: &str) -> Self {
        OperatorOptions {
            namespace: namespace.to_string(),
            label: label.to_string(),
            log_filter: None,
            extra_args: Vec::new(),
            kubeconfig: None,
            env: Vec::new(),
        }
    }
}

/// A running (or stopped) `bascule run` process; see the module documentation.
pub struct Operator {
    options: OperatorOptions,
    kubeconfig: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
    last_exit: Option<ExitStatus>,
}

impl Operator {
    /// Starts `bascule run --namespace NS` against the harness' hub.
    pub fn start(h: &Harness, options: OperatorOptions) -> Result<Operator, String> {
        let dir = h.dir().join("operator-logs");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = dir.join(format!("{}.log", super::unique_name(&options.label)));
        let kubeconfig = options
            .kubeconfig
            .clone()
            .unwrap_or_else(|| h.kubeconfig(h.hub()));
        let mut op = Operator {
            options,
            kubeconfig,
            log,
            child: None,
            starts: 0,
            last_exit: None,
        };
        op.spawn()?;
        Ok(op)
    }

    fn spawn(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("the operator is already running".into());
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        self.starts += 1;
        let binary = operator_binary();
        let mut args = vec![
            "run".to_string(),
            "--namespace".to_string(),
            self.options.namespace.clone(),
        ];
        args.extend(self.options.extra_args.iter().cloned());
        let filter = self
            .options
            .log_filter
            .clone()
            .or_else(|| std::env::var("BASCULE_LOG").ok())
            .unwrap_or_else(|| "info,bascule=debug".to_string());
        let _ = writeln!(
            file,
            "=== e2e: start #{} at {}: KUBECONFIG={} BASCULE_LOG={filter} {binary} {} ===",
            self.starts,
            now_rfc3339(),
            self.kubeconfig.display(),
            args.join(" ")
        );
        let err_file: File = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let mut cmd = Command::new(&binary);
        cmd.args(&args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("BASCULE_LOG", &filter)
            // A file, not a terminal: no colour escapes.
            .env("NO_COLOR", "1")
            // Never fall back to an in-cluster configuration.
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file));
        let child = spawn_in_own_group(cmd).map_err(|e| format!("cannot run {binary}: {e}"))?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id of the running operator (also its process group id).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// How many times it was started (1 + restarts).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// How the last run ended, once it has.
    pub fn last_exit(&self) -> Option<ExitStatus> {
        self.last_exit
    }

    /// `Ok` while the process runs; an error with its exit status and log tail once it exited.
    pub fn ensure_running(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(Child::try_wait) {
            None => Err(format!(
                "the operator is not running (last exit: {})\n{}",
                describe_exit(self.last_exit),
                self.tail_block(40)
            )),
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => {
                self.child = None;
                self.last_exit = Some(status);
                Err(format!(
                    "the operator exited unexpectedly ({})\n{}",
                    describe_exit(Some(status)),
                    self.tail_block(60)
                ))
            }
            Some(Err(e)) => Err(format!("cannot wait for the operator: {e}")),
        }
    }

    /// SIGTERM, then up to `grace` for it to exit; SIGKILL of its process group after that.
    /// Returns its exit status and whether it exited by itself within `grace`.
    pub fn stop(&mut self, grace: Duration) -> Result<(ExitStatus, bool), String> {
        let Some(mut child) = self.child.take() else {
            return Err("the operator is not running".into());
        };
        let pid = child.id() as i32;
        if let Ok(Some(status)) = child.try_wait() {
            self.last_exit = Some(status);
            return Ok((status, true));
        }
        // SAFETY: kill(2) on the pid of our own child, not yet reaped (so not reused).
        unsafe { sys::kill(pid, sys::SIGTERM) };
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.last_exit = Some(status);
                    // Anything it left in its group goes too.
                    return Ok((status, true));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => break,
                Err(e) => return Err(format!("cannot wait for the operator: {e}")),
            }
        }
        let status = kill_group_and_reap(&mut child)?;
        self.last_exit = Some(status);
        Ok((status, false))
    }

    /// SIGKILL of the operator's whole process group (a crash), reaped before returning.
    pub fn kill(&mut self) -> Result<ExitStatus, String> {
        let Some(mut child) = self.child.take() else {
            return Err("the operator is not running".into());
        };
        let status = kill_group_and_reap(&mut child)?;
        self.last_exit = Some(status);
        Ok(status)
    }

    /// Starts it again with the same arguments (after [`stop`](Self::stop) or
    /// [`kill`](Self::kill)); the log continues in the same file.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.spawn()
    }

    /// A graceful restart: SIGTERM (SIGKILL after `grace`), then start again.
    pub fn restart(&mut self, grace: Duration) -> Result<(), String> {
        if self.child.is_some() {
            self.stop(grace)?;
        }
        self.spawn()
    }

    /// A crash and a restart: SIGKILL, then start again.
    pub fn kill_and_restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            self.kill()?;
        }
        self.spawn()
    }

    /// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`, ...), while it runs.
    pub fn proc_status_kib(&self, field: &str) -> Option<u64> {
        let pid = self.pid()?;
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmRSS")
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log.display()));
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn tail_block(&self, lines: usize) -> String {
        format!(
            "--- last {lines} lines of the operator's log ({}) ---\n{}\n{LOG_END}",
            self.log.display(),
            self.log_tail(lines)
        )
    }

    /// A trial's result with the operator's log tail appended when it failed.
    pub fn annotate(&self, result: TestResult) -> TestResult {
        result.map_err(|e| {
            let e = e.to_string();
            if e.contains(LOG_END) {
                e.into() // ensure_running already attached it
            } else {
                format!("{e}\n{}", self.tail_block(60)).into()
            }
        })
    }
}

const LOG_END: &str = "--- end of the operator's log ---";

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("e2e: a trial panicked\n{}", self.tail_block(60));
        }
        if let Some(mut child) = self.child.take()
            && let Err(e) = kill_group_and_reap(&mut child)
        {
            eprintln!("e2e: error: {e}");
        }
    }
}

fn describe_exit(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "never exited".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (_, Some(sig)) => format!("killed by signal {sig}"),
            _ => format!("{s}"),
        },
    }
}

/// SIGKILL to the child's process group (its pid: it leads its own group), then reap it.
fn kill_group_and_reap(child: &mut Child) -> Result<ExitStatus, String> {
    match child.try_wait() {
        Ok(Some(status)) => {
            // Already exited and now reaped: its group id may belong to someone else by now.
            Ok(status)
        }
        Ok(None) => {
            // Not reaped yet, so the process group id cannot have been reused.
            // SAFETY: kill(2) on a process group we created.
            unsafe { sys::kill(-(child.id() as i32), sys::SIGKILL) };
            child
                .wait()
                .map_err(|e| format!("cannot reap the operator: {e}"))
        }
        Err(e) => Err(format!("cannot wait for the operator: {e}")),
    }
}

/// Spawns `cmd` in its own process group, with SIGKILL as its parent-death signal.
///
/// The parent-death signal fires when the *thread* that forked exits, so every spawn happens on
/// one thread that lives as long as the test process.
fn spawn_in_own_group(cmd: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

    let (reply, answer) = mpsc::channel();
    {
        let mut guard = SPAWNER.lock().unwrap_or_else(|p| p.into_inner());
        let sender = guard.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<Request>();
            std::thread::Builder::new()
                .name("e2e-operator-spawner".into())
                .spawn(move || {
                    for (cmd, reply) in rx {
                        let _ = reply.send(spawn_now(cmd));
                    }
                })
                .expect("spawner thread");
            tx
        });
        sender
            .send((cmd, reply))
            .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    }
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread did not answer"))?
}

fn spawn_now(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as i32;
    cmd.process_group(0);
    // SAFETY: prctl and getppid are async-signal-safe; nothing here allocates.
    unsafe {
        cmd.pre_exec(move || {
            if sys::prctl(sys::PR_SET_PDEATHSIG, sys::SIGKILL as std::ffi::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if sys::getppid() != parent {
                return Err(std::io::Error::other("the test process is gone"));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

mod sys {
    use std::ffi::c_int;

    pub const SIGKILL: c_int = 9;
    pub const SIGTERM: c_int = 15;
    pub const PR_SET_PDEATHSIG: c_int = 1;

    unsafe extern "C" {
        pub fn kill(pid: c_int, sig: c_int) -> c_int;
        pub fn prctl(option: c_int, ...) -> c_int;
        pub fn getppid() -> c_int;
    }
}

/// A harness kubeconfig as a member's Secret must hold it: its file references (CA, client
/// certificate and key) replaced by the files' contents (`*-data`), as JSON.
pub fn secret_kubeconfig(path: &Path) -> Result<String, String> {
    use serde_json::Value;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut doc: Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let inline = |entry: &mut Value, fields: &[&str]| -> Result<(), String> {
        for field in fields {
            if let Some(Value::String(file)) = entry.get(*field).cloned() {
                let file = base.join(file);
                let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                let data = serde_json::to_value(k8s_openapi::ByteString(bytes))
                    .map_err(|e| e.to_string())?;
                let obj = entry.as_object_mut().ok_or("not an object")?;
                obj.remove(*field);
                obj.insert(format!("{field}-data"), data);
            }
        }
        Ok(())
    };
    for c in doc["clusters"].as_array_mut().ok_or("no clusters")? {
        inline(&mut c["cluster"], &["certificate-authority"])?;
    }
    for u in doc["users"].as_array_mut().ok_or("no users")? {
        inline(&mut u["user"], &["client-certificate", "client-key"])?;
    }
    serde_json::to_string(&doc).map_err(|e| e.to_string())
}
