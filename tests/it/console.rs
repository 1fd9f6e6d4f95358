//! The web console in a real browser: Debian's headless Chromium, driven
//! through chromedriver (WebDriver) by `fantoccini`, looking at a console
//! fed by a real worker ([`TestApp`]) deploying real jobs.
//!
//! Each test starts chromedriver itself on a free port (installed by
//! `.ci/run`: `apt-get install chromium chromium-driver`; nothing is
//! installed at run time) and its own console on port 0, in process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use wfp_deployer::config::Settings;

use crate::helpers::app::TestApp;

mod auth;
mod page;
mod screenshots;

/// How long the page may take to show something before the test fails.
const PAGE_TIMEOUT: Duration = Duration::from_secs(40);

/// A console serving `settings`' broker names, in this process.
pub struct Console {
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl Console {
    pub async fn start(settings: &Settings) -> Console {
        let mut settings = settings.clone();
        settings.console.queue_poll = Duration::from_secs(1);
        let stop = CancellationToken::new();
        let listen = "127.0.0.1:0".parse().unwrap();
        let (addr, serve) = wfp_deployer::console::server::bind(&settings, listen, stop.clone())
            .await
            .expect("the console binds");
        tokio::spawn(serve);
        Console { addr, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A console for `app`, with the events log declared first (see
    /// [`declare_events_log`]).
    pub async fn for_app(app: &TestApp) -> Console {
        declare_events_log(app).await;
        Console::start(&app.settings).await
    }
}

/// Declares `app`'s events log, as a worker that keeps one does (this
/// version's worker does not), so events from now on can be replayed.
pub async fn declare_events_log(app: &TestApp) {
    let amqp = &app.settings.amqp;
    let connection = wfp_deployer::amqp::connect(amqp).await.unwrap();
    wfp_deployer::console::feed::ensure_events_log(
        &connection,
        amqp,
        app.settings.events.log_max_age,
    )
    .await
    .unwrap();
    let _ = connection.close(200, "done".into()).await;
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Headless Chromium behind a chromedriver of its own.
pub struct Browser {
    pub client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser window of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        // A process group of its own, so Drop can end the browser too.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver; .ci/run does)");
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let mut builder = ClientBuilder::rustls().expect("rustls WebDriver client");
        builder.capabilities(capabilities);
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match builder.connect(&webdriver).await {
                Ok(client) => {
                    return Browser {
                        client,
                        _driver: driver,
                        _profile: profile,
                    };
                }
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("no browser session through chromedriver: {last:?}");
    }

    /// Opens the console and waits until its event stream is live.
    pub async fn open(&self, console: &Console) {
        self.client
            .goto(&console.url())
            .await
            .expect("the page loads");
        self.wait_text("#status", "live", |t| t == "live").await;
    }

    /// The text of the first element matching `selector`, if any.
    pub async fn text(&self, selector: &str) -> Option<String> {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e ? e.textContent.trim() : null;";
        match self.client.execute(script, vec![json!(selector)]).await {
            Ok(Value::String(text)) => Some(text),
            _ => None,
        }
    }

    /// How many elements match `selector`.
    pub async fn count(&self, selector: &str) -> usize {
        let script = "return document.querySelectorAll(arguments[0]).length;";
        let found = self.client.execute(script, vec![json!(selector)]).await;
        found.ok().and_then(|n| n.as_u64()).unwrap_or(0) as usize
    }

    /// Waits until `selector`'s text satisfies `ok` (`what` says what the
    /// test waits for, in the failure).
    pub async fn wait_text(&self, selector: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            last = self.text(selector).await;
            if let Some(text) = last.as_deref().filter(|t| ok(t)) {
                return text.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = self.text("main").await.unwrap_or_default();
        panic!("{selector}: waited for {what}, last saw {last:?}; the page said: {page}");
    }

    /// Waits until `selector` matches nothing.
    pub async fn wait_gone(&self, selector: &str) {
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if self.count(selector).await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{selector} is still on the page");
    }

    /// Clicks the first element matching `selector`, as a user would.
    pub async fn click(&self, selector: &str) {
        let element = self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{selector}: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
    }

    /// Types `text` into the input `selector`.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = self.client.find(Locator::Css(selector)).await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    /// A PNG of the window, written to `path`.
    pub async fn screenshot(&self, path: &PathBuf) -> Vec<u8> {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        png
    }

    /// Ends the session (the browser quits), then chromedriver (Drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Ends chromedriver's process group: the browser it started is in it,
    /// and must not outlive a test that failed before [`Browser::close`].
    fn drop(&mut self) {
        if let Some(pid) = self._driver.id() {
            let group = format!("-{pid}");
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
        }
    }
}
