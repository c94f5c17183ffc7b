//! A console user agent for tests: keeps cookies, follows no redirects, reads the CSRF
//! token from pages, signs in with a local account.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// A browser-ish client of one gateway's `/console`.
pub struct ConsoleClient {
    pub base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

/// A console answer.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The value of the first hidden `csrf` field on the page.
    pub fn csrf(&self) -> Option<String> {
        hidden_value(&self.body, "csrf")
    }
}

/// The `value` of the first `<input … name="NAME" … value="…">` in `html`.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + 7;
    let rest = &tag[v..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

impl ConsoleClient {
    pub fn new(base: &str) -> Self {
        ConsoleClient {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                let expired = text.contains("Max-Age=0");
                if expired || v.is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
    }

    /// The cookies held now (name → value).
    pub fn cookies(&self) -> &BTreeMap<String, String> {
        &self.cookies
    }

    /// Drops every cookie (a new browser).
    pub fn forget_cookies(&mut self) {
        self.cookies.clear();
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let response = self
            .http
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.finish(response).await
    }

    /// A GET carrying exactly `cookie` (a stolen or replayed cookie).
    pub async fn get_with_cookie(&mut self, path: &str, cookie: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, cookie)
            .send()
            .await
            .expect("GET");
        self.finish(response).await
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("POST");
        self.finish(response).await
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    /// Signs in with a local account; panics unless the console answers 303 to the console.
    pub async fn sign_in(&mut self, username: &str, password: &str) {
        let page = self.sign_in_attempt(username, password).await;
        assert_eq!(page.status, 303, "sign-in refused: {}", page.body);
    }

    /// One sign-in attempt (the login page, then its form).
    pub async fn sign_in_attempt(&mut self, username: &str, password: &str) -> Page {
        let login = self.get("/console/login").await;
        assert_eq!(login.status, 200, "{}", login.body);
        let token = hidden_value(&login.body, "login_token").expect("login token");
        self.post_form(
            "/console/login",
            &[
                ("username", username),
                ("password", password),
                ("login_token", &token),
                ("next", "/console"),
            ],
        )
        .await
    }
}

/// Creates a local console account directly in the gateway's store.
pub async fn add_console_user(app: &crate::TestApp, username: &str, password: &str, role: &str) {
    let phc = gateway::console::password::hash(password).expect("hash");
    app.gateway
        .state
        .store
        .create_console_user(username, &phc, role)
        .await
        .expect("create console user");
}
