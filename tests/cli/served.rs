//! A `milagro … serve` process run by a test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// A `milagro ROLE serve` process, what it printed when it started, and what it wrote on
/// stderr; killed when dropped.
pub struct Served {
    child: Child,
    /// Where it serves.
    pub url: String,
    /// The JSON object it printed once it listened.
    pub started: Value,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    /// Starts `milagro ROLE serve --config CONFIG` with `extra` arguments before the
    /// subcommand (e.g. `--log-format json`), and waits for its first JSON object.
    pub fn start(role: &str, config: &std::path::Path) -> Self {
        Self::start_with(&[], role, config)
    }

    /// [`Served::start`] with `extra` global arguments.
    pub fn start_with(extra: &[&str], role: &str, config: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_milagro"))
            .args(extra)
            .args([role, "serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        // The first JSON object on stdout says where it listens.
        let mut text = String::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            text.push_str(&line);
            if line == "}" {
                break;
            }
        }
        let started: Value = serde_json::from_str(&text).unwrap();
        Self {
            child,
            url: started["url"].as_str().unwrap().to_owned(),
            started,
            stderr,
        }
    }

    /// Sends it SIGHUP.
    pub fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Whether it wrote `text` on stderr so far.
    pub fn logged(&self, text: &str) -> bool {
        self.stderr.lock().unwrap().contains(text)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
