//! Operators and roles against the real binary with `[auth] required = true`: every route of
//! `rampart_http::auth::ROUTES` refuses lower roles (403) and missing credentials (401) and
//! admits its role; console login sets a hardened cookie; cookie-authenticated state changes
//! need the CSRF token; repeated bad passwords are rate-limited (429) and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Node, time};
use rampart_http::auth::{Access, ROUTES, Role};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// `rampart user add NAME --role ROLE --token [--password-stdin]`; returns the printed token.
fn add_user(data: &Path, name: &str, role: &str, password: Option<&str>) -> String {
    common::add_user(data, name, role, &[], password)
}

fn concrete(pattern: &str) -> String {
    pattern
        .replace("{uid}", "no-such-uid")
        .replace("{id}", "no-such-id")
        .replace("{name}", "no-such-user")
        .replace("{*path}", "no-such-asset.js")
}

async fn call(
    c: &reqwest::Client,
    node: &Node,
    method: &str,
    pattern: &str,
    token: Option<&str>,
) -> u16 {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let mut rq = c.request(m.clone(), node.url(&concrete(pattern)));
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if m == Method::POST || m == Method::PUT {
        rq = rq.json(&json!({}));
    }
    rq.send().await.unwrap().status().as_u16()
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Viewer => "viewer",
        Role::Operator => "operator",
        Role::Admin => "admin",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_lower_roles_and_admits_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, "[auth]\nrequired = true\n").unwrap();
    let tokens = [
        (Role::Viewer, add_user(&data, "vic", "viewer", None)),
        (Role::Operator, add_user(&data, "olga", "operator", None)),
        (
            Role::Admin,
            add_user(&data, "ada", "admin", Some(ADMIN_PASSWORD)),
        ),
    ];
    let users = std::fs::read_to_string(data.join("users/users.json")).unwrap();
    assert!(!users.contains(ADMIN_PASSWORD), "password stored in clear");
    for (_, t) in &tokens {
        assert!(!users.contains(&t[21..]), "token stored in clear");
    }

    let node = Node::start(&data, &["--config", cfg.to_str().unwrap()]);
    let c = reqwest::Client::new();

    let mut checked = 0;
    for (method, pattern, access) in ROUTES {
        let none = call(&c, &node, method, pattern, None).await;
        match access {
            Access::Public => {
                assert!(
                    none != 401 && none != 403,
                    "{method} {pattern} is public but answered {none} without credentials"
                );
            }
            Access::Role(need) => {
                assert_eq!(none, 401, "{method} {pattern} without credentials");
                let bad = call(&c, &node, method, pattern, Some("rmp_0000000000000000_00")).await;
                assert_eq!(bad, 401, "{method} {pattern} with a forged token");
                for (role, token) in &tokens {
                    let status = call(&c, &node, method, pattern, Some(token)).await;
                    if role < need {
                        assert_eq!(
                            status,
                            403,
                            "{method} {pattern} needs {} but a {} got {status}",
                            role_name(*need),
                            role_name(*role)
                        );
                    } else if role == need {
                        assert!(
                            status != 401 && status != 403,
                            "{method} {pattern}: its own role {} got {status}",
                            role_name(*role)
                        );
                    }
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, ROUTES.len());

    // The OpenAPI document states each operation's role.
    let doc: Value = c
        .get(node.url("/api/v1/openapi.json"))
        .bearer_auth(&tokens[0].1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["paths"]["/api/v1/reports"]["post"]["x-rampart-role"],
        "operator"
    );
    assert_eq!(
        doc["paths"]["/api/v1/users"]["post"]["x-rampart-role"],
        "admin"
    );

    // An unlisted route is refused even to an admin (default deny) — or simply not found.
    let s = call(&c, &node, "GET", "/api/v1/not-a-route", Some(&tokens[2].1)).await;
    assert!(s == 403 || s == 404, "unlisted route answered {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_login_cookie_csrf_and_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, "[auth]\nrequired = true\n").unwrap();
    let viewer = add_user(&data, "vic", "viewer", None);
    add_user(&data, "ada", "admin", Some(ADMIN_PASSWORD));
    let node = Node::start(&data, &["--config", cfg.to_str().unwrap()]);
    let c = reqwest::Client::new();

    // Login: a hardened session cookie and a CSRF token.
    let r = c
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"user": "ada", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(
        !set_cookie.contains("; Secure"),
        "plain http: a Secure cookie would never come back: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    assert_eq!(cookie.len(), "rampart_session=".len() + 64, "{cookie}");
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(body["role"], "admin");

    // A GET with the cookie works.
    let r = c
        .get(node.url("/api/v1/entities"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = c
        .get(node.url("/api/v1/auth/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"], "ada");
    assert_eq!(me["csrf_token"], csrf.as_str());

    // A POST with the cookie but no CSRF header is refused; with it, it is accepted.
    let report = json!([{"uid": "csrf-1", "lat": 1.0, "lon": 2.0, "time": time(-1000)}]);
    let r = c
        .post(node.url("/api/v1/reports"))
        .header("cookie", &cookie)
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(node.url("/api/v1/reports"))
        .header("cookie", &cookie)
        .header("x-csrf-token", "0".repeat(64))
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a wrong CSRF token must be refused");
    let r = c
        .post(node.url("/api/v1/reports"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Logout ends the session.
    let r = c
        .post(node.url("/api/v1/auth/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .get(node.url("/api/v1/entities"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Five bad passwords are refused (401); the sixth attempt is rate-limited (429), even
    // with the right password.
    for i in 0..5 {
        let r = c
            .post(node.url("/api/v1/auth/login"))
            .json(&json!({"user": "ada", "password": format!("wrong-password-{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = c
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"user": "ada", "password": "wrong-password-6"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let r = c
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"user": "ada", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    // Counted in /metrics.
    let metrics = c
        .get(node.url("/metrics"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |reason: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.contains("auth_refusals") && l.contains(&format!("reason=\"{reason}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(count("bad_login"), 5.0, "{metrics}");
    assert_eq!(count("login_rate_limited"), 2.0, "{metrics}");
    assert!(count("csrf") >= 2.0, "{metrics}");
}

/// The console shows a login form when the node requires credentials, and works after login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_login_form_in_headless_chromium() {
    let browser = common::Browser::setup();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, "[auth]\nrequired = true\n").unwrap();
    add_user(&data, "ada", "admin", Some(ADMIN_PASSWORD));
    let node = Node::start(&data, &["--config", cfg.to_str().unwrap()]);
    browser
        .run(
            "login.mjs",
            vec![node.base.clone(), "ada".into(), ADMIN_PASSWORD.into()],
            "login checks passed",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_over_https_are_secure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, "[auth]\nrequired = true\n").unwrap();
    add_user(&data, "ada", "admin", Some(ADMIN_PASSWORD));
    let node = Node::start(
        &data,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "https=127.0.0.1:0",
        ],
    );
    let body = json!({"user": "ada", "password": ADMIN_PASSWORD}).to_string();
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--cacert"])
        .arg(data.join("pki/ca.crt"))
        .args(["-H", "content-type: application/json", "-d", &body])
        .arg(format!(
            "https://{}/api/v1/auth/login",
            node.listener("https")
        ))
        .output()
        .expect("curl (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {text}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}
