//! Headless Chromium driven through the W3C WebDriver HTTP protocol, for tests that use a
//! page as a person would.
//!
//! [`ensure_chromium`] installs Debian's `chromium` and `chromium-driver` on first use
//! (these tests never skip), [`ChromeDriver::start`] runs `chromedriver` on a free loopback
//! port, and a [`Session`] is one headless browser with a fresh profile. Only the handful
//! of commands the tests use are here: navigate, find by CSS selector, type, clear, click,
//! read text and attributes, screenshot. Page updates that follow a `fetch` are awaited by
//! polling the DOM ([`Session::wait_for`]), never by sleeping a fixed time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's ChromeDriver (package `chromium-driver`), the same version as [`CHROMIUM`].
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The flags Chromium needs here: headless as root in a container, and nothing that
/// reaches for Google's hosts (the network is loopback only; without these it misbehaves).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1500",
];

/// The W3C key under which an element reference travels.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Installs `chromium` and `chromium-driver` with apt unless both binaries are there.
///
/// Test binaries run in parallel processes, so the check-and-install runs under `flock(1)`
/// (util-linux, essential on Debian) on a lock file in the workspace's `.cache/`: the
/// first one installs, the others wait and then find the binaries. A failed install fails
/// the test with apt's output.
pub fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    let cache = milagro_regtest::default_cache_dir();
    std::fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("create {}: {e}", cache.display()));
    let script = format!(
        "set -e
         if [ -x {CHROMIUM} ] && [ -x {CHROMEDRIVER} ]; then exit 0; fi
         apt-get update -o DPkg::Lock::Timeout=600
         apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 \
           chromium chromium-driver"
    );
    let output = Command::new("flock")
        .arg(cache.join("chromium-apt.lock"))
        .args(["sh", "-c", &script])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run flock + apt-get to install chromium: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(20).collect();
    assert!(
        output.status.success(),
        "installing chromium and chromium-driver with apt-get failed ({}):\n{}\n--- last lines of stdout:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    );
    for exe in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(exe).exists(),
            "apt-get succeeded but {exe} is missing"
        );
    }
}

/// A failed WebDriver command: the W3C error code (e.g. `no such element`) and message.
#[derive(Debug)]
pub struct WebDriverError {
    /// What was asked, e.g. `POST /session/…/element`.
    pub command: String,
    /// The W3C error code, or `http` when the driver could not be reached.
    pub code: String,
    /// The driver's explanation.
    pub message: String,
}

impl WebDriverError {
    /// Whether the page may simply not have got there yet: the element is not (or no
    /// longer) in the DOM. Polls retry these and fail on anything else.
    pub fn is_not_there_yet(&self) -> bool {
        matches!(
            self.code.as_str(),
            "no such element" | "stale element reference"
        )
    }
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.command, self.code, self.message)
    }
}

impl std::error::Error for WebDriverError {}

/// A `chromedriver` child process on a loopback port; killed when dropped.
pub struct ChromeDriver {
    child: Child,
    base: String,
    log: PathBuf,
    client: reqwest::blocking::Client,
}

impl ChromeDriver {
    /// Starts `chromedriver` on a free port (its output goes to `log_dir/chromedriver.log`)
    /// and waits until it reports ready.
    pub fn start(log_dir: &Path) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let log = log_dir.join("chromedriver.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let client = milagro_http_client::Outbound::system()
            .unwrap()
            .builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            client,
        };
        crate::wait_until("chromedriver to be ready", Duration::from_secs(30), || {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited ({status}):\n{}", driver.log_text());
            }
            let ready = driver
                .client
                .get(format!("{}/status", driver.base))
                .send()
                .ok()?
                .json::<Value>()
                .ok()?;
            (ready["value"]["ready"] == true).then_some(())
        });
        driver
    }

    /// What chromedriver printed so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Opens a headless Chromium with a fresh, empty profile in `profile_dir`.
    pub fn session(&self, profile_dir: &Path) -> Session<'_> {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": CHROMIUM_ARGS
                    .iter()
                    .map(|arg| arg.to_string())
                    .chain([format!("--user-data-dir={}", profile_dir.display())])
                    .collect::<Vec<_>>(),
            },
        }}});
        let value = command(
            &self.client,
            "POST",
            &format!("{}/session", self.base),
            Some(capabilities),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- chromedriver log:\n{}", self.log_text()));
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {value}"))
            .to_owned();
        Session {
            driver: self,
            url: format!("{}/session/{id}", self.base),
            open: true,
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one WebDriver command; returns the answer's `value`, or its error.
fn command(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WebDriverError> {
    let what = format!("{method} {url}");
    let http = |e: reqwest::Error| WebDriverError {
        command: what.clone(),
        code: "http".into(),
        message: e.to_string(),
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().map_err(http)?;
    let ok = response.status().is_success();
    let answer: Value = response.json().map_err(http)?;
    let value = answer["value"].clone();
    if ok {
        Ok(value)
    } else {
        Err(WebDriverError {
            command: what,
            code: value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// One browser; closed when dropped (before its driver, which it borrows).
pub struct Session<'d> {
    driver: &'d ChromeDriver,
    url: String,
    open: bool,
}

/// An element of the current page, as found by [`Session::find`].
pub struct Element<'s, 'd> {
    session: &'s Session<'d>,
    id: String,
}

impl<'d> Session<'d> {
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
        command(
            &self.driver.client,
            method,
            &format!("{}{path}", self.url),
            body,
        )
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.send("POST", "/url", Some(json!({ "url": url })))
            .unwrap();
    }

    /// The URL of the page the browser shows now (after every redirect it followed).
    pub fn current_url(&self) -> String {
        let url = self.send("GET", "/url", None).unwrap();
        url.as_str()
            .unwrap_or_else(|| panic!("the url is not a string: {url}"))
            .to_owned()
    }

    /// The HTML of the page the browser shows now, as the browser serializes it.
    pub fn source(&self) -> String {
        let source = self.send("GET", "/source", None).unwrap();
        source
            .as_str()
            .unwrap_or_else(|| panic!("the source is not a string: {source}"))
            .to_owned()
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Result<Element<'_, 'd>, WebDriverError> {
        let found = self.send(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": selector})),
        )?;
        Ok(Element {
            session: self,
            id: element_id(&found),
        })
    }

    /// Every element matching the CSS `selector`, in document order.
    pub fn find_all(&self, selector: &str) -> Result<Vec<Element<'_, 'd>>, WebDriverError> {
        let found = self.send(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": selector})),
        )?;
        Ok(found
            .as_array()
            .unwrap_or_else(|| panic!("elements answer is not a list: {found}"))
            .iter()
            .map(|element| Element {
                session: self,
                id: element_id(element),
            })
            .collect())
    }

    /// The rendered text of every element matching `selector` (none if nothing matches);
    /// `None` if the page replaced them while they were being read.
    pub fn texts(&self, selector: &str) -> Option<Vec<String>> {
        let read = || -> Result<Vec<String>, WebDriverError> {
            self.find_all(selector)?.iter().map(Element::text).collect()
        };
        match read() {
            Ok(texts) => Some(texts),
            Err(e) if e.is_not_there_yet() => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// Polls `check` until it returns `Some`, failing the test after `timeout` with the
    /// page's status line and chromedriver's log.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            if std::time::Instant::now() >= deadline {
                let body = self.texts("body").unwrap_or_default().join("");
                panic!("timed out after {timeout:?} waiting for {what}; the page shows:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let encoded = self.send("GET", "/screenshot", None).unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .unwrap()
    }

    /// Ends the session and closes the browser.
    pub fn close(mut self) {
        self.open = false;
        self.send("DELETE", "", None).unwrap();
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.send("DELETE", "", None);
        }
    }
}

fn element_id(found: &Value) -> String {
    found[ELEMENT_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("not an element reference: {found}"))
        .to_owned()
}

impl Element<'_, '_> {
    fn send(&self, method: &str, what: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
        self.session
            .send(method, &format!("/element/{}{what}", self.id), body)
    }

    /// Types `text` into the element, as keystrokes.
    pub fn send_keys(&self, text: &str) -> Result<(), WebDriverError> {
        self.send("POST", "/value", Some(json!({ "text": text })))
            .map(drop)
    }

    /// Empties an input.
    pub fn clear(&self) -> Result<(), WebDriverError> {
        self.send("POST", "/clear", Some(json!({}))).map(drop)
    }

    /// Clicks the element's centre.
    pub fn click(&self) -> Result<(), WebDriverError> {
        self.send("POST", "/click", Some(json!({}))).map(drop)
    }

    /// The rendered text, as a person sees it.
    pub fn text(&self) -> Result<String, WebDriverError> {
        let text = self.send("GET", "/text", None)?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute, `None` if the element has none.
    pub fn attribute(&self, name: &str) -> Result<Option<String>, WebDriverError> {
        let value = self.send("GET", &format!("/attribute/{name}"), None)?;
        Ok(value.as_str().map(str::to_owned))
    }
}
