//! Headless Chromium (Debian's package, `HATCHED_CHROMIUM`, installed by `scripts/test`) driven
//! over its DevTools protocol: one WebSocket, commands answered by id, events kept for the test
//! to read (console errors, exceptions, Content-Security-Policy violations). Nothing downloads a
//! browser.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running Chromium with one page; both end when dropped.
pub struct Browser {
    _child: Child,
    _profile: TempDir,
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    events: Arc<Mutex<Vec<Value>>>,
    next: std::sync::atomic::AtomicU64,
    session: String,
}

/// A directory removed when dropped (the browser's throwaway profile).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records a violation as the page sees it, before any of the page's own scripts run.
const CSP_PROBE: &str = "window.__csp = []; document.addEventListener('securitypolicyviolation', \
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";

impl Browser {
    /// Starts Chromium headless with an empty profile and opens a blank page.
    pub async fn launch() -> Result<Browser> {
        let exe = std::env::var("HATCHED_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        if !std::path::Path::new(&exe).exists() {
            bail!("no Chromium at {exe}: scripts/test installs Debian's (install_chromium in scripts/tools.sh)");
        }
        let profile =
            std::env::temp_dir().join(format!("hatched-chromium-{}", hatched::domain::key::random_base62(10)));
        std::fs::create_dir_all(&profile)?;
        // The flags the machine notes give: no sandbox as root, no background traffic to a
        // closed network.
        let mut child = Command::new(&exe)
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
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {exe}"))?;
        let stderr = child.stderr.take().context("chromium's stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let ws_url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Ok::<_, anyhow::Error>(url.trim().to_owned());
                }
            }
            bail!("chromium exited before listening")
        })
        .await
        .context("chromium did not start its DevTools server in 30 s")??;
        // Keep draining its stderr so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let (socket, _) = tokio_tungstenite::connect_async(&ws_url).await.context("DevTools WebSocket")?;
        let (mut sink, mut stream) = socket.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = outgoing.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (p, e) = (pending.clone(), events.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else { continue };
                let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                match value["id"].as_u64() {
                    Some(id) => {
                        if let Some(reply) = p.lock().unwrap().remove(&id) {
                            let _ = reply.send(value);
                        }
                    }
                    None => e.lock().unwrap().push(value),
                }
            }
        });
        let mut browser = Browser {
            _child: child,
            _profile: TempDir(profile),
            out,
            pending,
            events,
            next: std::sync::atomic::AtomicU64::new(1),
            session: String::new(),
        };
        let target = browser.browser_call("Target.createTarget", json!({ "url": "about:blank" })).await?;
        let target_id = target["targetId"].as_str().context("targetId")?.to_owned();
        let attached =
            browser.browser_call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true })).await?;
        browser.session = attached["sessionId"].as_str().context("sessionId")?.to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({})).await?;
        }
        browser.call("Page.addScriptToEvaluateOnNewDocument", json!({ "source": CSP_PROBE })).await?;
        Ok(browser)
    }

    async fn send(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let (reply, answer) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, reply);
        self.out.send(Message::Text(message.to_string().into())).map_err(|_| anyhow!("DevTools connection closed"))?;
        let answer = tokio::time::timeout(Duration::from_secs(60), answer)
            .await
            .with_context(|| format!("{method}: no answer in 60 s"))?
            .map_err(|_| anyhow!("{method}: connection closed"))?;
        if let Some(error) = answer.get("error") {
            bail!("{method}: {error}");
        }
        Ok(answer["result"].clone())
    }

    async fn browser_call(&self, method: &str, params: Value) -> Result<Value> {
        self.send(None, method, params).await
    }

    /// A DevTools command to the page.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.send(Some(&self.session.clone()), method, params).await
    }

    /// Loads `url` and waits for a new document, complete. The old one is marked first:
    /// `Page.navigate` answers before the new document exists, and a link differing from the
    /// current address only after `#` is a same-document navigation (the page then reloads
    /// itself on `hashchange`), so "complete" alone can be the old page's state.
    pub async fn open(&self, url: &str) -> Result<()> {
        self.eval("window.__hatchedOld = true").await?;
        self.call("Page.navigate", json!({ "url": url })).await?;
        self.reloaded().await
    }

    /// Reloads the page and waits for the new document, complete.
    pub async fn reload(&self) -> Result<()> {
        self.eval("window.__hatchedOld = true").await?;
        self.call("Page.reload", json!({})).await?;
        self.reloaded().await
    }

    async fn reloaded(&self) -> Result<()> {
        self.wait_for("!window.__hatchedOld && document.readyState === 'complete'", "a new document").await
    }

    /// The value of a JavaScript expression (promises awaited).
    pub async fn eval(&self, expression: &str) -> Result<Value> {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            bail!("{expression}: {exception}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Waits (up to 20 s) until `condition` is true in the page.
    pub async fn wait_for(&self, condition: &str, what: &str) -> Result<()> {
        for _ in 0..400 {
            // A page being replaced has no document for a moment, or no execution context at
            // all (the protocol then answers an error): not yet, not a failure.
            let probe = format!("(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()");
            match self.eval(&probe).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(e) if is_between_documents(&e) => {}
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let text = self.eval("document.body ? document.body.innerText.slice(0, 2000) : ''").await?;
        bail!("waited 20 s for {what} ({condition}); the page says: {text}")
    }

    /// The element matching `selector` clicked, as a user's click would be.
    pub async fn click(&self, selector: &str) -> Result<()> {
        let clicked = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({s}); if (!e) return false; e.click(); return true; }})()",
                s = json!(selector)
            ))
            .await?;
        if clicked != json!(true) {
            bail!("nothing to click at {selector}");
        }
        Ok(())
    }

    /// A key pressed and released (`Tab`, `Enter`, `Escape`, ` `), `shift` held if asked.
    pub async fn press(&self, key: &str, shift: bool) -> Result<()> {
        let (code, key_code, text) = match key {
            "Tab" => ("Tab", 9, None),
            "Enter" => ("Enter", 13, Some("\r")),
            "Escape" => ("Escape", 27, None),
            " " => ("Space", 32, Some(" ")),
            other => bail!("no key {other}"),
        };
        let modifiers = if shift { 8 } else { 0 };
        let mut down = json!({ "type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": key_code,
            "nativeVirtualKeyCode": key_code, "modifiers": modifiers });
        if let Some(text) = text {
            down["text"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down).await?;
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": key_code,
                "nativeVirtualKeyCode": key_code, "modifiers": modifiers }),
        )
        .await?;
        Ok(())
    }

    /// Text typed into the focused element.
    pub async fn type_text(&self, text: &str) -> Result<()> {
        self.call("Input.insertText", json!({ "text": text })).await.map(|_| ())
    }

    /// Tabs (at most 80 times) until the focused element matches `selector`: the keyboard
    /// reaches it.
    pub async fn tab_to(&self, selector: &str) -> Result<()> {
        let focused = format!("document.activeElement && document.activeElement.matches({})", json!(selector));
        for _ in 0..80 {
            if self.eval(&focused).await? == json!(true) {
                return Ok(());
            }
            self.press("Tab", false).await?;
        }
        bail!("Tab never reached {selector}")
    }

    /// A PNG of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) -> Result<()> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" })).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().context("data")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Content-Security-Policy violations the page saw, console errors and uncaught
    /// exceptions, so far.
    pub async fn problems(&self) -> Result<Vec<String>> {
        let mut found: Vec<String> = Vec::new();
        if let Value::Array(csp) = self.eval("window.__csp || []").await? {
            found.extend(csp.iter().map(|v| format!("CSP violation: {v}")));
        }
        for event in self.events.lock().unwrap().iter() {
            match event["method"].as_str() {
                Some("Runtime.exceptionThrown") => {
                    found.push(format!("exception: {}", event["params"]["exceptionDetails"]))
                }
                Some("Log.entryAdded") if event["params"]["entry"]["level"] == "error" => {
                    let entry = &event["params"]["entry"];
                    // A refused API call (401 on an ended session, 4xx shown to the user) is the
                    // page working, not failing.
                    if entry["source"] != "network" {
                        found.push(format!("console: {}", entry["text"]));
                    }
                }
                Some("Runtime.consoleAPICalled") if event["params"]["type"] == "error" => {
                    found.push(format!("console.error: {}", event["params"]["args"]));
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

/// The protocol's answers to an evaluation while one document replaces another.
fn is_between_documents(error: &anyhow::Error) -> bool {
    let text = error.to_string();
    [
        "Cannot find default execution context",
        "Execution context was destroyed",
        "Cannot find context with specified id",
        "Inspected target navigated or closed",
    ]
    .iter()
    .any(|m| text.contains(m))
}
