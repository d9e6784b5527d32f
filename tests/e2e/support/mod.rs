//! Test support for e2e tests against real control planes (see docs/e2e.md).
//!
//! One [`Harness`] per test run starts the hub and the members with `e2e/cluster up` in a
//! run-unique state directory, hands out [`kube::Client`]s, injects faults, and tears everything
//! down with `e2e/cluster down` — at the end of the run, on SIGINT/SIGTERM/SIGHUP, and (for a run
//! that was SIGKILLed) at the start of the next run. Every operation shells out to `e2e/cluster`,
//! so the script and the tests share one implementation.
//!
//! Fault injection returns guards that undo the fault when dropped, so a trial that fails or
//! panics half-way still leaves healthy clusters to the next trial.

#![allow(dead_code)] // not every test module uses every helper

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};

use kube::config::{KubeConfigOptions, Kubeconfig};

pub mod fleet;
pub mod http;
pub mod member_rbac;
pub mod metrics;
pub mod operator;
pub mod wait;

/// Error from the harness: a message that says what failed and where to look.
#[derive(Debug, Clone)]
pub struct HarnessError(pub String);

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

fn err(msg: impl Into<String>) -> HarnessError {
    HarnessError(msg.into())
}

/// What to start. Defaults: hub `hub`, members `eks-use1,gke-euw1`, 3 nodes per member; the
/// environment variables `BASCULE_E2E_HUB`, `BASCULE_E2E_MEMBERS` (comma-separated) and
/// `BASCULE_E2E_NODES` override them.
#[derive(Debug, Clone)]
pub struct Topology {
    pub hub: String,
    pub members: Vec<String>,
    pub nodes_per_member: u32,
}

impl Topology {
    pub fn from_env() -> Self {
        let hub = std::env::var("BASCULE_E2E_HUB").unwrap_or_else(|_| "hub".into());
        let members = std::env::var("BASCULE_E2E_MEMBERS")
            .unwrap_or_else(|_| "eks-use1,gke-euw1".into())
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let nodes_per_member = std::env::var("BASCULE_E2E_NODES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3);
        Topology {
            hub,
            members,
            nodes_per_member,
        }
    }
}

/// The repository root (where `e2e/cluster` lives), read at run time: the shared build cache
/// (scripts/lib.sh) can hold a test binary built from another checkout, whose compile-time
/// path would point there.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Where run directories live: `$BASCULE_E2E_RUNS`, default `$TMPDIR/bascule-e2e`.
pub fn runs_root() -> PathBuf {
    std::env::var_os("BASCULE_E2E_RUNS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("bascule-e2e"))
}

/// Set when a signal asked the run to stop: trials and harness calls then fail at once instead
/// of racing the teardown.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// The `e2e/cluster` child currently running, so a signal handler can kill it (its process
/// group) before tearing down.
static CHILD_PGID: Mutex<Option<i32>> = Mutex::new(None);

/// Runs `e2e/cluster --dir DIR ARGS...`, stderr passed through (it logs progress there), stdout
/// returned. The child gets its own process group so it can be killed as a whole.
pub fn run_cluster_script<I, S>(dir: &Path, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use std::os::unix::process::CommandExt;
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    if interrupted() && args.first().map(|a| a != "down").unwrap_or(true) {
        return Err(err("interrupted: the clusters are being torn down"));
    }
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let script = repo_root().join("e2e/cluster");
    let child = Command::new(&script)
        .arg("--dir")
        .arg(dir)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| err(format!("cannot run {}: {e}", script.display())))?;
    *CHILD_PGID.lock().unwrap_or_else(|p| p.into_inner()) = Some(child.id() as i32);
    let out = child.wait_with_output();
    *CHILD_PGID.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let out = out.map_err(|e| err(format!("e2e/cluster {shown}: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "`e2e/cluster --dir {} {shown}` failed ({}); its error output is above",
            dir.display(),
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills the process group of a running `e2e/cluster` child, if any (used on signals).
fn kill_running_child() {
    if let Some(pgid) = *CHILD_PGID.lock().unwrap_or_else(|p| p.into_inner()) {
        // SAFETY: plain kill(2) on a process group we created.
        unsafe {
            libc_kill(-pgid, 9);
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Start time (clock ticks since boot) of a process, to tell a live owner from a reused pid.
fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted after the parenthesised command name (which may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Tears down the clusters of earlier runs whose test process is gone (crashed or SIGKILLed).
fn clean_stale_runs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("run-") || !dir.is_dir() {
            continue;
        }
        let owner = std::fs::read_to_string(dir.join("owner")).unwrap_or_default();
        let mut it = owner.split_whitespace().map(|s| s.parse::<u64>().ok());
        let alive = match (it.next().flatten(), it.next().flatten()) {
            (Some(pid), Some(start)) => proc_start_time(pid as u32) == Some(start),
            // No owner file yet: a run may be starting right now; leave it a minute.
            _ => entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().unwrap_or_default() < Duration::from_secs(60))
                .unwrap_or(false),
        };
        if !alive {
            eprintln!(
                "e2e: removing clusters left by an earlier run in {}",
                dir.display()
            );
            if let Err(e) = run_cluster_script(&dir, ["down"]) {
                eprintln!("e2e: warning: could not clean {}: {e}", dir.display());
            }
        }
    }
}

/// The running clusters of one test run.
pub struct Harness {
    dir: PathBuf,
    topology: Topology,
    torn_down: Mutex<bool>,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("dir", &self.dir)
            .field("topology", &self.topology)
            .finish()
    }
}

/// The directory the current run uses (set before `up` starts, so a signal during `up` can
/// still tear down what was started).
static RUN_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

impl Harness {
    /// Starts the clusters (building the binaries first if they are missing), after removing
    /// whatever crashed earlier runs left behind. On failure nothing is left running.
    pub fn up(topology: Topology) -> Result<Harness> {
        let root = runs_root();
        std::fs::create_dir_all(&root)
            .map_err(|e| err(format!("cannot create {}: {e}", root.display())))?;
        clean_stale_runs(&root);

        let pid = std::process::id();
        let dir = root.join(format!("run-{pid}"));
        if dir.exists() {
            // Same pid as a dead earlier run that clean_stale_runs could not remove.
            run_cluster_script(&dir, ["down"])?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        let start = proc_start_time(pid).unwrap_or(0);
        std::fs::write(dir.join("owner"), format!("{pid} {start}\n"))
            .map_err(|e| err(format!("cannot write {}/owner: {e}", dir.display())))?;
        *RUN_DIR.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir.clone());

        let harness = Harness {
            dir,
            topology,
            torn_down: Mutex::new(false),
        };
        let t = Instant::now();
        let members = harness.topology.members.join(",");
        let nodes = harness.topology.nodes_per_member.to_string();
        let up = run_cluster_script(
            &harness.dir,
            [
                "up",
                "--hub",
                &harness.topology.hub,
                "--members",
                &members,
                "--nodes",
                &nodes,
            ],
        );
        if let Err(e) = up {
            harness.down();
            return Err(err(format!("the e2e clusters could not be started: {e}")));
        }
        eprintln!(
            "e2e: hub {} and members {} up in {:.1} s (state in {})",
            harness.topology.hub,
            members,
            t.elapsed().as_secs_f64(),
            harness.dir.display()
        );
        Ok(harness)
    }

    /// Stops every process and removes every file of this run. Idempotent.
    pub fn down(&self) {
        let mut done = self.torn_down.lock().unwrap_or_else(|p| p.into_inner());
        if *done {
            return;
        }
        if std::env::var_os("BASCULE_E2E_KEEP").is_some() {
            eprintln!(
                "e2e: BASCULE_E2E_KEEP is set; leaving the clusters running. Remove them with:\n  \
                 e2e/cluster --dir {} down",
                self.dir.display()
            );
        } else if let Err(e) = run_cluster_script(&self.dir, ["down"]) {
            eprintln!("e2e: error: teardown failed: {e}");
        }
        *done = true;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn hub(&self) -> &str {
        &self.topology.hub
    }

    pub fn members(&self) -> &[String] {
        &self.topology.members
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Path of a cluster's kubeconfig (context `kwok-<name>`, client-certificate auth).
    pub fn kubeconfig(&self, cluster: &str) -> PathBuf {
        self.dir.join("kubeconfigs").join(format!("{cluster}.yaml"))
    }

    /// A [`kube::Config`] for a cluster, for tests that tune timeouts before building a client.
    pub async fn config(&self, cluster: &str) -> Result<kube::Config> {
        let path = self.kubeconfig(cluster);
        let kubeconfig = Kubeconfig::read_from(&path)
            .map_err(|e| err(format!("reading kubeconfig {}: {e}", path.display())))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| err(format!("kubeconfig {}: {e}", path.display())))
    }

    /// A client for a cluster. Build clients inside the tokio runtime that uses them.
    pub async fn client(&self, cluster: &str) -> Result<kube::Client> {
        let config = self.config(cluster).await?;
        kube::Client::try_from(config).map_err(|e| err(format!("client for {cluster}: {e}")))
    }

    fn script(&self, args: &[&str]) -> Result<String> {
        run_cluster_script(&self.dir, args)
    }

    fn check_member(&self, member: &str) -> Result<()> {
        if self.topology.members.iter().any(|m| m == member) {
            Ok(())
        } else {
            Err(err(format!(
                "'{member}' is not a member (members: {:?})",
                self.topology.members
            )))
        }
    }

    /// Provider outage: kills the member's whole control plane (etcd data is kept). The guard
    /// starts it again when dropped, unless [`Outage::end`] already did.
    pub fn stop(&self, member: &str) -> Result<Outage<'_>> {
        self.check_member(member)?;
        self.script(&["stop", member])?;
        Ok(Outage {
            harness: self,
            member: member.into(),
            kind: FaultKind::Stopped,
            active: true,
        })
    }

    /// Freezes the member's kube-apiserver (SIGSTOP): connections are accepted but never
    /// answered. The guard thaws it when dropped.
    pub fn freeze(&self, member: &str) -> Result<Outage<'_>> {
        self.check_member(member)?;
        self.script(&["freeze", member])?;
        Ok(Outage {
            harness: self,
            member: member.into(),
            kind: FaultKind::Frozen,
            active: true,
        })
    }

    /// Makes the given nodes (all if `None`) of a member NotReady, as when their kubelets stop
    /// reporting ready; returns once the API shows them NotReady. The guard makes them Ready
    /// again when dropped.
    pub fn nodes_notready(&self, member: &str, nodes: Option<&[&str]>) -> Result<Outage<'_>> {
        self.check_member(member)?;
        let mut args = vec!["nodes-notready", member];
        args.extend(nodes.unwrap_or(&[]));
        self.script(&args)?;
        let nodes = nodes.map(|n| n.iter().map(|s| s.to_string()).collect());
        Ok(Outage {
            harness: self,
            member: member.into(),
            kind: FaultKind::NodesNotReady(nodes),
            active: true,
        })
    }

    /// Starts a stopped member's control plane; returns once its apiserver is ready.
    pub fn start(&self, member: &str) -> Result<()> {
        self.check_member(member)?;
        self.script(&["start", member]).map(drop)
    }

    /// Thaws a frozen kube-apiserver (SIGCONT).
    pub fn thaw(&self, member: &str) -> Result<()> {
        if member != self.hub() {
            self.check_member(member)?;
        }
        self.script(&["thaw", member]).map(drop)
    }

    /// Freezes the hub's kube-apiserver (SIGSTOP); the guard thaws it when dropped.
    pub fn freeze_hub(&self) -> Result<Outage<'_>> {
        self.script(&["freeze", self.hub()])?;
        Ok(Outage {
            harness: self,
            member: self.hub().into(),
            kind: FaultKind::Frozen,
            active: true,
        })
    }

    /// Makes the given nodes (all if `None`) Ready again; returns once the API shows them Ready.
    pub fn nodes_ready(&self, member: &str, nodes: Option<&[&str]>) -> Result<()> {
        self.check_member(member)?;
        let mut args = vec!["nodes-ready", member];
        args.extend(nodes.unwrap_or(&[]));
        self.script(&args).map(drop)
    }

    /// `e2e/cluster status` output (one line per cluster and its components).
    pub fn status(&self) -> Result<String> {
        // status exits 1 when something is stopped; the text is what matters here.
        let out = Command::new(repo_root().join("e2e/cluster"))
            .arg("--dir")
            .arg(&self.dir)
            .arg("status")
            .output()
            .map_err(|e| err(format!("e2e/cluster status: {e}")))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.down();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    Stopped,
    Frozen,
    NodesNotReady(Option<Vec<String>>),
}

/// An injected fault; dropping it undoes the fault (errors are printed, not raised, since drop
/// may run during a panic). Call [`Outage::end`] to undo it explicitly and see errors.
#[must_use = "dropping the guard undoes the fault immediately"]
pub struct Outage<'a> {
    harness: &'a Harness,
    member: String,
    kind: FaultKind,
    active: bool,
}

impl Outage<'_> {
    pub fn member(&self) -> &str {
        &self.member
    }

    pub fn kind(&self) -> &FaultKind {
        &self.kind
    }

    /// Undoes the fault: start / thaw / nodes-ready.
    pub fn end(mut self) -> Result<()> {
        self.active = false;
        self.undo()
    }

    fn undo(&self) -> Result<()> {
        match &self.kind {
            FaultKind::Stopped => self.harness.start(&self.member),
            FaultKind::Frozen => self.harness.thaw(&self.member),
            FaultKind::NodesNotReady(nodes) => {
                let names: Option<Vec<&str>> = nodes
                    .as_ref()
                    .map(|v| v.iter().map(String::as_str).collect());
                self.harness.nodes_ready(&self.member, names.as_deref())
            }
        }
    }
}

impl Drop for Outage<'_> {
    fn drop(&mut self) {
        if self.active {
            self.active = false;
            if let Err(e) = self.undo() {
                eprintln!(
                    "e2e: error: could not undo {:?} on {}: {e}",
                    self.kind, self.member
                );
            }
        }
    }
}

/// Tears down the current run's clusters from a signal handler: kills a running `e2e/cluster`
/// child first (so an `up` in progress stops starting things), then runs `down`.
pub fn emergency_teardown() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    kill_running_child();
    let dir = RUN_DIR.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(dir) = dir
        && std::env::var_os("BASCULE_E2E_KEEP").is_none()
        && let Err(e) = run_cluster_script(&dir, ["down"])
    {
        eprintln!("e2e: error: teardown failed: {e}");
    }
}

/// Runs an async test body on a fresh multi-threaded runtime (one per trial, so clients never
/// outlive the runtime that drives their connections).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// Any error a trial meets; every error type converts into it with `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a trial body (and its helpers) return.
pub type TestResult<T = ()> = std::result::Result<T, BoxError>;

/// `Err(format!(..))` unless `cond`: an assertion that lets the fixture clean up and attach the
/// operator's log, where `assert!` would panic past it.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+).into());
        }
    };
}

/// The run's harness: started once by `main` before the trials run, torn down after them.
static HARNESS: OnceLock<std::result::Result<Harness, String>> = OnceLock::new();

/// Starts the clusters for this run (once). Later calls return the first outcome.
pub fn start(topology: Topology) -> std::result::Result<&'static Harness, String> {
    HARNESS
        .get_or_init(|| Harness::up(topology).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// The run's harness, for trials. Fails (never skips) when it could not be started.
pub fn harness() -> std::result::Result<&'static Harness, Failed> {
    if interrupted() {
        return Err(Failed::from(
            "interrupted: the clusters are being torn down",
        ));
    }
    match HARNESS.get() {
        Some(Ok(h)) => Ok(h),
        Some(Err(e)) => Err(Failed::from(format!("e2e harness unavailable: {e}"))),
        None => Err(Failed::from(
            "e2e harness was not started (main did not call support::start)",
        )),
    }
}

/// Tears the run's clusters down if they were started.
pub fn teardown() {
    if let Some(Ok(h)) = HARNESS.get() {
        h.down();
    }
}

/// An e2e trial: an async body that gets the run's harness and runs on its own runtime.
pub fn trial<F, Fut>(name: impl Into<String>, body: F) -> Trial
where
    F: FnOnce(&'static Harness) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = TestResult>,
{
    Trial::test(name, move || {
        let h = harness()?;
        block_on(body(h)).map_err(|e| Failed::from(format!("{e}")))
    })
}

/// A name unique within this run, for namespaces and objects (DNS-label safe).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{:x}{:x}-{}",
        std::process::id(),
        nanos & 0xffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes MemberClusters whatever their finalizer: the operator that would release them (once
/// nothing is placed there) is usually stopped already when a fixture cleans up.
pub async fn delete_member_clusters<S: AsRef<str>>(
    hub: &kube::Client,
    names: impl IntoIterator<Item = S>,
) {
    use kube::api::{Api, DeleteParams, Patch, PatchParams};
    let api = Api::<bascule::api::MemberCluster>::all(hub.clone());
    for name in names {
        let name = name.as_ref();
        let _ = api.delete(name, &DeleteParams::default()).await;
        let _ = api
            .patch_metadata(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
}
