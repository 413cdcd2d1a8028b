//! Headless Chromium for the browser tests: found where developers keep it, run with a
//! deadline of our own (no GNU `timeout`, so the tests run on macOS too), and never
//! skipped: a machine without a browser fails the test with the way to get one.

use std::path::PathBuf;
use std::time::Duration;

/// The browser: `CHROME` when set, else the usual names on `PATH`, else macOS's apps.
/// Kept in step with `find_chrome` in infra/scripts/deps.sh.
pub fn chrome() -> PathBuf {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
            .unwrap_or_default()
    };
    if let Some(named) = std::env::var_os("CHROME") {
        let named = PathBuf::from(named);
        return if named.is_file() {
            named
        } else {
            on_path(&named.to_string_lossy())
                .unwrap_or_else(|| panic!("CHROME={} is not a file on PATH", named.display()))
        };
    }
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .find_map(|n| on_path(n))
        .or_else(|| {
            [
                "/Applications/Chromium.app/Contents/MacOS/Chromium",
                "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
            ]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "this test needs Chromium or Chrome and found neither (chromium, chromium-browser, \
                 google-chrome on PATH, or CHROME=/path/to/binary). Install it: \
                 `sudo apt-get install chromium` (Debian/Ubuntu), `sudo dnf install chromium` (Fedora), \
                 `brew install --cask chromium` (macOS); `make deps` does it where it can"
            )
        })
}

/// Loads `url` headless and returns the DOM after the page's scripts ran (their timers
/// and fetches get `budget_ms` of virtual time). A browser that hangs fails the test
/// after a minute instead of hanging the run.
pub async fn dump_dom(url: &str, budget_ms: u32) -> String {
    let profile = std::env::temp_dir().join(format!("stockhold-chromium-{}", ulid::Ulid::new()));
    let child = tokio::process::Command::new(chrome())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--dump-dom",
        ])
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the browser");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the browser did not finish within 60 s")
        .expect("browser output");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!dom.is_empty(), "the browser printed no DOM: {}", String::from_utf8_lossy(&out.stderr));
    dom
}
