//! Whole-binary benchmark: `command-center run --demo` start-to-ready time, idle memory and
//! SIGTERM shutdown time. Prints one JSON object on stdout.
//!
//! Run: `cargo bench -p runtime --bench daemon`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const IDLE: Duration = Duration::from_secs(10);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// target/<profile>/deps/daemon-<hash> -> target/<profile>/command-center, built if missing.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let path = dir.join("command-center");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "runtime",
                "--bin",
                "command-center",
            ])
            .current_dir(workspace_root())
            .status()
            .expect("cargo build of command-center");
        assert!(status.success(), "building command-center failed");
    }
    assert!(path.exists(), "{} missing", path.display());
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, http_port: u16, sim_port: u16) -> PathBuf {
    let root = workspace_root();
    let text = format!(
        "[daemon]\ndata_dir = \"{}\"\nhttp_listen = \"127.0.0.1:{http_port}\"\npolicies_dir = \"{}\"\nprompts_dir = \"{}\"\n\n[demo]\nsim_listen = \"127.0.0.1:{sim_port}\"\ndata_dir = \"{}\"\n",
        dir.join("data").display(),
        root.join("policies").display(),
        root.join("prompts").display(),
        dir.join("demo-data").display(),
    );
    let path = dir.join("command-center.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One `GET /readyz` over HTTP/1.0; true on status 200.
fn ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200")
}

/// (VmRSS, VmHWM) in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn sigterm(child: &Child) {
    let pid = child.id() as i32;
    // SAFETY: sending a signal to our own child process.
    #[allow(unsafe_code)]
    let result = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(result, 0, "kill({pid}, SIGTERM) failed");
}

struct Run {
    ready_ms: f64,
    rss_kib: u64,
    hwm_kib: u64,
    stop_ms: f64,
    exit_code: Option<i32>,
}

fn one_run(binary: &Path) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let sim_port = free_port();
    let config = write_config(dir.path(), http_port, sim_port);
    let addr: SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();

    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .args(["run", "--demo"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn command-center");
    let deadline = started + Duration::from_secs(30);
    loop {
        if ready(addr) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("command-center exited before ready: {status}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command-center not ready within 30s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;

    std::thread::sleep(IDLE);
    let (rss_kib, hwm_kib) = memory_kib(child.id());

    let stopping = Instant::now();
    sigterm(&child);
    let stop_deadline = stopping + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > stop_deadline {
            let _ = child.kill();
            panic!("command-center did not exit within 30s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Run {
        ready_ms,
        rss_kib,
        hwm_kib,
        stop_ms: stopping.elapsed().as_secs_f64() * 1000.0,
        exit_code: status.code(),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn main() {
    let binary = binary();
    let runs: Vec<Run> = (0..RUNS).map(|_| one_run(&binary)).collect();
    let ready: Vec<f64> = runs.iter().map(|run| run.ready_ms).collect();
    let rss: Vec<f64> = runs.iter().map(|run| run.rss_kib as f64 / 1024.0).collect();
    let stop: Vec<f64> = runs.iter().map(|run| run.stop_ms).collect();
    let hwm_max = runs.iter().map(|run| run.hwm_kib).max().unwrap_or(0) as f64 / 1024.0;
    let min = |values: &[f64]| values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |values: &[f64]| values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let report = serde_json::json!({
        "binary": binary.display().to_string(),
        "runs": RUNS,
        "idle_s": IDLE.as_secs(),
        "start_to_ready_ms_min": round2(min(&ready)),
        "start_to_ready_ms_median": round2(median(&ready)),
        "start_to_ready_ms_max": round2(max(&ready)),
        "start_to_ready_ms_all": ready.iter().map(|v| round2(*v)).collect::<Vec<_>>(),
        "idle_rss_mib_median": round2(median(&rss)),
        "idle_rss_mib_max": round2(max(&rss)),
        "vm_hwm_mib_max": round2(hwm_max),
        "sigterm_to_exit_ms_median": round2(median(&stop)),
        "sigterm_to_exit_ms_max": round2(max(&stop)),
        "exit_codes": runs.iter().map(|run| run.exit_code).collect::<Vec<_>>(),
    });
    println!("{report}");
}
