//! A moto server (AWS API mock, `moto_server` on PATH) on 127.0.0.1 for one test, killed with
//! its process group when dropped, also when the test panics.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

// Also used by the e2e providers trials for their fake cloud endpoints, which read the logs.
#[path = "group_child.rs"]
#[allow(dead_code)]
pub mod group_child;
use group_child::GroupChild;

pub struct Moto {
    pub url: String,
    process: GroupChild,
}

/// How to get moto when it is missing: the tests never skip.
pub const INSTALL_HINT: &str = "moto_server is not on PATH; install it with `pip install 'moto[server]==5.2.1'` (Python 3.11) — the AWS tests need it and never skip";

impl Moto {
    pub fn start(log_dir: &Path) -> Result<Moto, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let log = log_dir.join(format!("moto-{port}.log"));
        let process = GroupChild::spawn(
            Command::new("moto_server").args(["-H", "127.0.0.1", "-p", &port.to_string()]),
            &log,
        )
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => INSTALL_HINT.to_string(),
            _ => format!("moto_server: {e}"),
        })?;
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            process,
        };
        moto.process
            .wait_until(|| TcpStream::connect(("127.0.0.1", port)).is_ok())
            .map_err(|()| {
                format!(
                    "moto_server did not listen on {} within 30 s (log {})",
                    moto.url,
                    log.display()
                )
            })?;
        Ok(moto)
    }

    /// Runs e2e/aws/moto-seed.py against this server; see [`seed`].
    pub fn seed(&self, clusters: &[&str]) -> Result<serde_json::Value, String> {
        seed(&self.url, clusters)
    }

    /// From now on moto checks each request's access key, signature and the caller's IAM
    /// policies (`POST /moto-api/reset-auth 0`). moto 5.2.1 computes EKS's REST signatures
    /// wrongly (SignatureDoesNotMatch even from boto3), so only STS and IAM calls work after this.
    pub fn enforce_iam(&self) -> Result<(), String> {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        write!(
            s,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0"
        )
        .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        if answer.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(format!(
                "moto reset-auth: {}",
                answer.lines().next().unwrap_or("")
            ))
        }
    }
}

/// Runs e2e/aws/moto-seed.py against the moto at `url`: IAM users, a role, EKS clusters, then
/// IAM enforcement on. Returns its JSON.
pub fn seed(url: &str, clusters: &[&str]) -> Result<serde_json::Value, String> {
    // Read at run time: a test binary reused from the shared build cache may have been built
    // in another checkout.
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let script = root.join("e2e/aws/moto-seed.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(url);
    for c in clusters {
        cmd.args(["--cluster", c]);
    }
    let out = cmd.output().map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("moto-seed output: {e}"))
}
