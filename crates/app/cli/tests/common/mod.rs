//! Test harness: starts the real `rampart` binary on a free loopback port with its own data
//! directory, and stops it (SIGKILL) when dropped. Every `rampart: listening KIND ADDR` line the
//! node prints is captured, so tests can reach the feed listeners as well as HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running node.
pub struct Node {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub data: PathBuf,
    /// Every listener the node reported, by kind (`http`, `nmea-udp`, `ais-tcp`, …).
    pub listeners: HashMap<String, SocketAddr>,
}

impl Node {
    /// Starts `rampart serve` on `data` with extra arguments.
    pub fn start(data: &Path, extra: &[&str]) -> Node {
        Self::start_cmd("serve", data, extra)
    }

    pub fn start_cmd(cmd: &str, data: &Path, extra: &[&str]) -> Node {
        Self::start_env(cmd, data, extra, &[])
    }

    /// Starts `rampart CMD` with extra arguments and environment variables.
    pub fn start_env(cmd: &str, data: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .envs(envs.iter().copied())
            .arg(cmd)
            .arg("--data")
            .arg(data)
            .args(["--listen", "http=127.0.0.1:0"])
            .args(extra)
            .env("RAMPART_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rampart");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Listener lines come first, one per listener; the "open" line follows them all.
            let mut listeners = HashMap::new();
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            for line in lines.by_ref() {
                if let Some(rest) = line.strip_prefix("rampart: listening ")
                    && let Some((kind, addr)) = rest.trim().split_once(' ')
                    && let Ok(addr) = addr.parse::<SocketAddr>()
                {
                    listeners.insert(kind.to_string(), addr);
                } else if line.starts_with("rampart: open ") {
                    break;
                }
            }
            let _ = tx.send(listeners);
            // Keep draining so the node never blocks on a full pipe.
            for _ in lines {}
        });
        let listeners = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("rampart did not report its listening addresses");
        let addr = listeners
            .get("http")
            .expect("rampart did not report its http listener")
            .to_string();
        Node {
            child,
            base: format!("http://{addr}"),
            addr,
            data: data.to_path_buf(),
            listeners,
        }
    }

    /// The bound address of the listener of `kind` (e.g. `nmea-udp`).
    pub fn listener(&self, kind: &str) -> SocketAddr {
        *self
            .listeners
            .get(kind)
            .unwrap_or_else(|| panic!("no {kind} listener (have {:?})", self.listeners))
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the node to shut down cleanly (at most 20 s).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process is alive.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RFC 3339 text for "now plus `offset_ms`".
pub fn time(offset_ms: i64) -> String {
    rampart_model::Timestamp::now()
        .plus_millis(offset_ms)
        .to_rfc3339()
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The Python interpreter of the test venv (`scripts/python-env`), with the third-party
/// clients and decoding oracles installed; `RAMPART_PYTHON` overrides it.
pub fn python() -> PathBuf {
    let path = std::env::var_os("RAMPART_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target/pyenv/bin/python")
        });
    assert!(
        path.exists(),
        "the Python test interpreter {} is missing: run scripts/python-env (or set RAMPART_PYTHON)",
        path.display()
    );
    path
}

/// Runs a third-party client scenario (`what` names it in failures) on a blocking thread and
/// returns the JSON it prints; fails the test with its standard error when it fails.
pub async fn run_json(mut cmd: Command, what: &str) -> serde_json::Value {
    let what = what.to_string();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed (run scripts/python-env?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The GeoJSON properties of entity `uid`, waiting up to 5 s for it to reach the picture.
pub async fn entity(node: &Node, uid: &str) -> serde_json::Value {
    let url = node.url(&format!("/api/v1/entities/{}", urlencode(uid)));
    let mut last = serde_json::Value::Null;
    let found = eventually(Duration::from_secs(5), async || {
        let Ok(r) = reqwest::get(&url).await else {
            return false;
        };
        if r.status() != 200 {
            return false;
        }
        last = r.json().await.unwrap_or(serde_json::Value::Null);
        true
    })
    .await;
    assert!(found, "entity {uid} is not in the picture");
    last["properties"].clone()
}

/// Percent-encodes everything but RFC 3986 unreserved characters (a uid in a URL path).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The node's Prometheus text.
pub async fn metrics(node: &Node) -> String {
    reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one metric series (`name{labels}`), 0 when absent.
pub fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Asserts that JSON number `got` is within 1e-6 of `want`.
pub fn close_to(ctx: &str, got: &serde_json::Value, want: f64) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("{ctx}: expected a number near {want}, got {got}"));
    assert!((g - want).abs() < 1e-6, "{ctx}: got {g}, want {want}");
}

/// `rampart user add NAME --role ROLE --token --data DATA EXTRA… [--password-stdin]`, with the
/// password (if any) on standard input; returns the API token it prints.
pub fn add_user(
    data: &Path,
    name: &str,
    role: &str,
    extra: &[&str],
    password: Option<&str>,
) -> String {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(["user", "add", name, "--role", role, "--token", "--data"])
        .arg(data)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if password.is_some() {
        cmd.arg("--password-stdin");
    }
    let mut child = cmd.spawn().unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(p) = password {
            writeln!(stdin, "{p}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add {name} failed");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("rmp_"), "no token printed: {token:?}");
    token
}

/// A private Mosquitto (Debian `mosquitto`) on a free loopback port, anonymous clients
/// allowed, stopped on drop: the remote broker of the bridge tests.
pub struct Mosquitto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts it and waits (up to 5 s) until it accepts connections.
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (install Debian mosquitto)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The console's browser tests: `web/` with its npm packages installed (playwright-core) and
/// Debian's Chromium (`RAMPART_CHROMIUM` overrides the path).
pub struct Browser {
    /// The workspace's `web/` folder.
    pub web: PathBuf,
    /// The Chromium binary the scripts launch.
    pub chromium: String,
}

impl Browser {
    /// Checks Chromium is there and installs `web/node_modules` if it is missing.
    pub fn setup() -> Browser {
        let web = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../web")
            .canonicalize()
            .unwrap();
        let chromium =
            std::env::var("RAMPART_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "Chromium not found at {chromium}: install it (apt-get install -y chromium, as .ci/run does) or set RAMPART_CHROMIUM"
        );
        if !web.join("node_modules/playwright-core").exists() {
            let ok = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&web)
                .status()
                .expect("npm is needed for the console test (install Node.js 18+ with npm)")
                .success();
            assert!(ok, "npm ci in web/ failed");
        }
        Browser { web, chromium }
    }

    /// Runs `node web/tests/SCRIPT ARGS…` (off the async threads) and asserts it succeeded and
    /// printed `done`; returns its standard output.
    pub async fn run(&self, script: &str, args: Vec<String>, done: &str) -> String {
        let path = self.web.join("tests").join(script);
        let chromium = self.chromium.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(path)
                .args(args)
                .env("CHROMIUM", chromium)
                .output()
                .expect("node is needed for the console test")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains(done), "{script}: {stdout}");
        stdout
    }
}
