//! Builds the web console (`web/` at the workspace root) with npm when its output is missing or
//! older than its sources, then copies `web/dist` into `OUT_DIR` and generates `assets.rs`, the
//! table the crate embeds. Without npm (or if the web build fails) a small fallback page is
//! embedded instead and a cargo warning says how to build the console; the API still works.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let web = manifest.join("../../../web");
    for input in ["src", "package.json", "package-lock.json", "build.mjs"] {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=RAMPART_CONSOLE_NO_BUILD");
    println!("cargo:rerun-if-env-changed=NPM");

    let dist = web.join("dist");
    let skip = std::env::var_os("RAMPART_CONSOLE_NO_BUILD").is_some();
    if !skip && web.join("package.json").exists() && stale(&web, &dist) {
        if let Err(e) = npm_build(&web) {
            println!(
                "cargo:warning=console not built ({e}); embedding a fallback page. Build it with: cd web && npm ci && npm run build"
            );
        }
    }
    let files = if !dist.join("index.html").exists() {
        Vec::new()
    } else {
        if stale(&web, &dist) {
            println!(
                "cargo:warning=web/dist is older than web/src; embedding it anyway (run: cd web && npm run build)"
            );
        }
        collect(&dist)
    };
    if files.is_empty() && !web.join("package.json").exists() {
        println!("cargo:warning=web/ (the console's source) is missing; embedding a fallback page");
    }
    // A concurrent web build swaps dist/ in at its end: if a file vanished mid-copy, retry.
    if generate(&out, &dist, &files).is_err() {
        std::thread::sleep(std::time::Duration::from_secs(2));
        let files = if dist.join("index.html").exists() {
            collect(&dist)
        } else {
            Vec::new()
        };
        if let Err(e) = generate(&out, &dist, &files) {
            panic!(
                "writing the console asset table from {}: {e}",
                dist.display()
            );
        }
    }
}

/// The newest modification time under `path` (files and directories, recursively).
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut best = meta.modified().ok();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            let t = newest(&entry.path());
            if t > best {
                best = t;
            }
        }
    }
    best
}

/// True when `dist` is missing or older than any input of the web build.
fn stale(web: &Path, dist: &Path) -> bool {
    let Some(built) = std::fs::metadata(dist.join("index.html"))
        .and_then(|m| m.modified())
        .ok()
    else {
        return true;
    };
    ["src", "package.json", "package-lock.json", "build.mjs"]
        .iter()
        .any(|i| newest(&web.join(i)).is_some_and(|t| t > built))
}

fn npm_build(web: &Path) -> Result<(), String> {
    let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".to_string());
    let run = |args: &[&str]| -> Result<(), String> {
        let status = Command::new(&npm)
            .args(args)
            .current_dir(web)
            // Cargo's stdout is the build-script protocol: keep npm's chatter off it.
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("`{npm}` could not be started: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{npm} {}` failed with {status}", args.join(" ")))
        }
    };
    if !web.join("node_modules/.package-lock.json").exists() {
        run(&["ci", "--no-audit", "--no-fund"])?;
    }
    run(&["run", "build"])
}

/// Every file under `dist`, as paths relative to it with `/` separators.
fn collect(dist: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &rel, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dist, "", &mut out);
    out.sort();
    out
}

/// Copies the assets into `out` and writes `assets.rs`: one `Asset` (path, bytes, gzip twin,
/// ETag) per file.
fn generate(out: &Path, dist: &Path, files: &[String]) -> std::io::Result<()> {
    let copy = out.join("console");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy)?;
    let mut table = String::from("&[\n");
    for (n, rel) in files.iter().filter(|f| !f.ends_with(".gz")).enumerate() {
        let flat = format!("f{n}");
        std::fs::copy(dist.join(rel), copy.join(&flat))?;
        let gz = if files.contains(&format!("{rel}.gz")) {
            std::fs::copy(
                dist.join(format!("{rel}.gz")),
                copy.join(format!("{flat}.gz")),
            )?;
            format!(
                "Some(include_bytes!(concat!(env!(\"OUT_DIR\"), \"/console/{flat}.gz\")) as &[u8])"
            )
        } else {
            "None".to_string()
        };
        let etag = format!("\"{:016x}\"", fnv1a(&std::fs::read(dist.join(rel))?));
        let _ = writeln!(
            table,
            "    Asset {{ path: {rel:?}, body: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/console/{flat}\")), gzip: {gz}, etag: {etag:?} }},"
        );
    }
    table.push(']');
    std::fs::write(out.join("assets.rs"), table)
}

/// FNV-1a: a stable content hash for `ETag`s (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
