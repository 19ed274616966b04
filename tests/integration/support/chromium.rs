//! A synchronous headless Chromium driver for page tests: Debian's `chromium` as a child
//! process, spoken to over the DevTools protocol (a WebSocket, `tungstenite`, JSON). One
//! browser per test, one page target, every wait with a deadline.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long Chromium may take to start and print its DevTools address.
const START: Duration = Duration::from_secs(30);
/// How long one DevTools call may take to be answered.
const CALL: Duration = Duration::from_secs(30);
/// How long a navigation may take to reach its load event.
const LOAD: Duration = Duration::from_secs(30);
/// The viewport: a laptop screen.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;

/// A headless Chromium with one page open. Dropping it ends the browser (its whole process
/// group) and removes its profile directory.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Events read while waiting for an answer, kept for `navigate`.
    events: VecDeque<Value>,
    /// Exceptions and console errors of the page, for failure messages.
    page_log: Vec<String>,
    /// Chromium's stderr after its DevTools line, for failure messages.
    stderr: Arc<Mutex<String>>,
}

/// The first of `names` found as an executable file in `PATH`.
fn find_in_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| {
                use std::os::unix::fs::PermissionsExt;
                candidate
                    .metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    })
}

/// A profile directory of its own for each browser, so parallel tests share nothing.
fn fresh_profile_dir() -> PathBuf {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "wsp-chromium-{}-{}-{nanos}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

impl Browser {
    /// Starts headless Chromium and opens a blank page of 1280×800. Panics, saying how to
    /// install it, when there is no `chromium` (or `chromium-browser`) in `PATH`.
    pub fn start() -> Browser {
        let exe = find_in_path(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
            panic!(
                "no chromium in PATH: the console page tests need headless Chromium \
                 (apt-get install chromium)"
            )
        });
        let profile = fresh_profile_dir();
        let mut child = Command::new(&exe)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                &format!("--window-size={WIDTH},{HEIGHT}"),
                &format!("--user-data-dir={}", profile.display()),
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so Drop ends the renderers too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e} (apt-get install chromium)", exe.display()));

        // One thread reads stderr for the whole run: the DevTools line, then it keeps the
        // pipe drained so Chromium never blocks on it.
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("chromium stderr piped");
        let log = stderr.clone();
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.trim().to_string());
                    }
                }
                let mut log = log.lock();
                if log.len() < 64 * 1024 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let ws_url = match rx.recv_timeout(START) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                panic!(
                    "chromium printed no DevTools address within {START:?}; stderr:\n{}",
                    stderr.lock()
                );
            }
        };

        let ws = connect(&ws_url);
        let mut browser = Browser {
            child,
            profile,
            ws,
            session: String::new(),
            next_id: 0,
            events: VecDeque::new(),
            page_log: Vec::new(),
            stderr,
        };
        let target = browser.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = browser.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Opens `url` in the page and waits for its load event.
    pub fn navigate(&mut self, url: &str) {
        self.events.clear();
        let result = self.call("Page.navigate", json!({"url": url}));
        if let Some(error) = result["errorText"].as_str() {
            panic!("navigate to {url}: {error}");
        }
        let deadline = Instant::now() + LOAD;
        loop {
            while let Some(event) = self.events.pop_front() {
                if event["method"] == "Page.loadEventFired" {
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!("{url} did not load within {LOAD:?}{}", self.log_suffix());
            }
            if let Some(event) = self.read_message(deadline) {
                self.note(event);
            }
        }
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its value as JSON
    /// (`null` for `undefined`). Panics if it throws.
    pub fn eval(&mut self, js: &str) -> Value {
        self.try_eval(js)
            .unwrap_or_else(|e| panic!("eval {js:?}: {e}{}", self.log_suffix()))
    }

    /// Polls `js_condition` until it is `true` or `within` has passed; a condition that
    /// throws counts as false.
    pub fn wait_for(&mut self, js_condition: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.try_eval(js_condition).ok() == Some(Value::Bool(true)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the first element matching `css` (scrolled into view). Panics if none.
    pub fn click(&mut self, css: &str) {
        let selector = json!(css);
        let js = format!(
            "(() => {{ const el = document.querySelector({selector}); if (!el) return false; \
             el.scrollIntoView({{block: 'nearest'}}); el.click(); return true; }})()"
        );
        assert_eq!(
            self.eval(&js),
            Value::Bool(true),
            "no element {css:?} to click"
        );
    }

    /// Sets the value of the input or select matching `css` and dispatches `input` and
    /// `change`, as typing or choosing would.
    pub fn fill(&mut self, css: &str, value: &str) {
        let (selector, value) = (json!(css), json!(value));
        let js = format!(
            "(() => {{ const el = document.querySelector({selector}); if (!el) return false; \
             el.focus(); el.value = {value}; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); \
             el.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()"
        );
        assert_eq!(
            self.eval(&js),
            Value::Bool(true),
            "no element {css:?} to fill"
        );
    }

    /// Presses and releases one key as the keyboard would, on the focused element:
    /// a printable character (`"/"`, `"r"`) or `Enter`, `Escape`, `Tab`, `ArrowDown`, `ArrowUp`, ` `.
    pub fn press(&mut self, key: &str) {
        let (code, vk, text) = match key {
            "Enter" => ("Enter", 13, "\r"),
            "Escape" => ("Escape", 27, ""),
            "Tab" => ("Tab", 9, ""),
            "ArrowDown" => ("ArrowDown", 40, ""),
            "ArrowUp" => ("ArrowUp", 38, ""),
            " " => ("Space", 32, " "),
            "/" => ("Slash", 191, "/"),
            k if k.len() == 1 && k.as_bytes()[0].is_ascii_lowercase() => {
                let upper = k.to_ascii_uppercase();
                let vk = i64::from(upper.as_bytes()[0]);
                return self.key_events(k, &format!("Key{upper}"), vk, k);
            }
            other => panic!("press: no key code known for {other:?}"),
        };
        self.key_events(key, code, vk, text);
    }

    fn key_events(&mut self, key: &str, code: &str, vk: i64, text: &str) {
        let mut down = json!({"type": "keyDown", "key": key, "code": code,
            "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk});
        if !text.is_empty() {
            down["text"] = json!(text);
            down["unmodifiedText"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down);
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": code,
                "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}),
        );
    }

    /// Writes a PNG of the viewport to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        // Two frames, so a scroll or render just done is composited before the capture.
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = shot["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("screenshot base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The page's uncaught exceptions and `console.error` / `console.warn` lines so far.
    pub fn page_log(&self) -> &[String] {
        &self.page_log
    }

    /// A DevTools call to the page; returns its `result`, panics on an error answer.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call_in(Some(&session), method, params)
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.call_in(None, method, params)
    }

    fn try_eval(&mut self, js: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("exception");
            return Err(text.to_string());
        }
        Ok(result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    fn call_in(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        if let Err(e) = self.ws.send(Message::text(message.to_string())) {
            panic!("send {method} to chromium: {e}{}", self.log_suffix());
        }
        let deadline = Instant::now() + CALL;
        loop {
            let Some(message) = self.read_message(deadline) else {
                panic!("no answer to {method} within {CALL:?}{}", self.log_suffix());
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
            self.note(message);
        }
    }

    /// The next JSON message from Chromium, or `None` once `deadline` has passed.
    fn read_message(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            // Short socket timeouts so the deadline is checked; tungstenite keeps a
            // partly read frame across them.
            let step = left.clamp(Duration::from_millis(1), Duration::from_millis(500));
            let _ = self.ws.get_ref().set_read_timeout(Some(step));
            match self.ws.read() {
                Ok(Message::Text(text)) => match serde_json::from_str(text.as_str()) {
                    Ok(value) => return Some(value),
                    Err(e) => panic!("chromium sent bad JSON ({e}): {text}"),
                },
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    continue
                }
                Err(e) => panic!("DevTools connection lost: {e}{}", self.log_suffix()),
            }
        }
    }

    /// Keeps an event: page errors in the log, the rest (for `navigate`) in a bounded queue.
    fn note(&mut self, event: Value) {
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &event["params"]["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("exception");
                self.page_log.push(format!("exception: {text}"));
            }
            Some("Runtime.consoleAPICalled") => {
                let kind = event["params"]["type"].as_str().unwrap_or("");
                if kind == "error" || kind == "warning" {
                    let args: Vec<String> = event["params"]["args"]
                        .as_array()
                        .map(|args| {
                            args.iter()
                                .map(|a| match a.get("value") {
                                    Some(Value::String(s)) => s.clone(),
                                    Some(v) => v.to_string(),
                                    None => a["description"].as_str().unwrap_or("?").to_string(),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    self.page_log
                        .push(format!("console.{kind}: {}", args.join(" ")));
                }
            }
            _ => {
                if self.events.len() >= 1000 {
                    self.events.pop_front();
                }
                self.events.push_back(event);
            }
        }
    }

    /// The page log and Chromium's stderr, to end a failure message.
    fn log_suffix(&self) -> String {
        format!(
            "\npage log: {:?}\nchromium stderr (tail):\n{}",
            self.page_log,
            tail(&self.stderr.lock(), 2000)
        )
    }
}

/// The last `n` bytes of `s`, at a character boundary.
fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Opens the DevTools WebSocket at `ws_url` (`ws://127.0.0.1:PORT/devtools/browser/ID`).
fn connect(ws_url: &str) -> WebSocket<TcpStream> {
    let host = ws_url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected DevTools address {ws_url:?}"));
    let stream =
        TcpStream::connect(host).unwrap_or_else(|e| panic!("connect to DevTools {host}: {e}"));
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(CALL))
        .expect("set DevTools read timeout");
    stream
        .set_write_timeout(Some(CALL))
        .expect("set DevTools write timeout");
    match tungstenite::client::client(ws_url, stream) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("DevTools WebSocket handshake with {ws_url}: {e}"),
    }
}

/// Whether `pid` (our child) has exited, without reaping it: while it is a zombie its
/// pid, and so its process group id, cannot be given to another process.
fn exited_unreaped(pid: libc::pid_t) -> bool {
    // SAFETY: waitid(2) on our own child with WNOWAIT only reads its state into `info`.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOWAIT | libc::WNOHANG;
        libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) == 0 && info.si_pid() != 0
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // Ask politely first so the profile is closed, then end the whole group.
        let close = json!({"id": 0, "method": "Browser.close"}).to_string();
        if self.ws.send(Message::text(close)).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && !exited_unreaped(pid) {
                thread::sleep(Duration::from_millis(20));
            }
        }
        // SAFETY: kill(2) of the group this child leads; not yet reaped, so still ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // A renderer may still be exiting and writing: a few tries.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}
