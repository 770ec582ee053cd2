//! The operations explorer in a real headless browser: Debian's Chromium, driven through
//! ChromeDriver's WebDriver protocol (plain HTTP and JSON), both installed by the test set-up
//! when missing. The page lists the operations, shows a plan, runs an operation from its form
//! and renders the response; a screenshot is kept in `target/test-output/explorer.png`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::{Gateway, COUNTRY, RENAME};

/// The WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A ChromeDriver process and one headless Chromium session; both end when dropped.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        joinery_tests::apt::ensure(&["chromium", "chromium-driver"], "the explorer test");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        } } });
        let created: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            client,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.client.request(method.clone(), url);
        if method == reqwest::Method::POST {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_string()
    }

    async fn text(&self, css: &str) -> String {
        let element = self.element(css).await;
        let text = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                Value::Null,
            )
            .await;
        text.as_str().unwrap_or_default().to_string()
    }

    async fn screenshot(&self) -> Vec<u8> {
        let png = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }
}

/// Whether `answer` holds a whole HTTP response with a `Content-Length` body.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some(end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..end]
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    answer.len() >= end + 4 + length
}

impl Drop for Browser {
    /// Ends the WebDriver session first, which closes Chromium: killing the driver alone leaves
    /// the browser running. A plain blocking request, since `Drop` cannot wait on a future.
    fn drop(&mut self) {
        let address = self.base.trim_start_matches("http://");
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session
            );
            // Wait for the answer (the driver answers once the browser is closed), but not for
            // the connection to close: the driver keeps it open.
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut chunk) {
                    answer.extend_from_slice(&chunk[..n]);
                    if complete(&answer) {
                        break;
                    }
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn the_explorer_lists_operations_and_runs_one_in_a_real_browser() {
    let gw = Gateway::start(&[COUNTRY, RENAME]).await;
    let explorer = gw.running.explorer_url.clone();
    let browser = Browser::start().await;

    browser.open(&explorer).await;
    let list = browser.text("table").await;
    assert!(list.contains("Country"), "{list}");
    assert!(list.contains("$code: ID!"), "{list}");
    assert!(
        list.contains("RenameCountry") || list.contains("Rename"),
        "{list}"
    );

    // An operation's page: its plan, then a run from the form.
    browser.open(&format!("{explorer}op/Country")).await;
    let plan = browser.text("#plan").await;
    assert!(plan.contains("countries"), "{plan}");
    let variables = browser.element("#variables").await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{variables}/clear"),
            json!({}),
        )
        .await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{variables}/value"),
            json!({ "text": "{\"code\": \"JP\"}" }),
        )
        .await;
    let run = browser.element("#run").await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{run}/click"),
            json!({}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let response = loop {
        let shown = browser.text("#response").await;
        if !shown.is_empty() {
            break shown;
        }
        assert!(Instant::now() < deadline, "no response was rendered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rendered: Value = serde_json::from_str(&response).unwrap();
    assert_eq!(rendered["data"]["countries_country"]["capital"], "Tokyo");
    assert!(browser.text("#status").await.starts_with("HTTP 200"));
    // The run reached the gateway like any client's request.
    assert_eq!(gw.countries.requests(), 1);

    let shot = browser.screenshot().await;
    assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");
    let out = crate::harness::repo_root().join("target/test-output");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("explorer.png"), shot).unwrap();

    // An unknown operation is a page that says so.
    let missing = reqwest::get(format!("{explorer}op/Nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("No registered operation is named <code>Nope</code>"));
}
