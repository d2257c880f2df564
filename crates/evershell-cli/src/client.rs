//! The API client: where to connect and with which key, and the requests
//! every verb shares. Errors from the API print their code, message and
//! request id.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One profile of the credentials file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub url: String,
    pub slug: String,
    #[serde(default)]
    pub api_key: String,
    /// A session token from `evershell login --email`, sent when no API
    /// key is set; it expires after 12 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Profile {
    /// The bearer credential: the API key, else the session token.
    pub fn bearer(&self) -> &str {
        match (&self.api_key, &self.token) {
            (key, Some(token)) if key.is_empty() => token,
            (key, _) => key,
        }
    }
}

/// `~/.config/evershell/credentials`.
pub fn credentials_path() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?;
    Ok(PathBuf::from(home).join(".config/evershell/credentials"))
}

/// Writes `profile` as table `name` of the credentials file (mode `0600`),
/// keeping the other tables.
pub fn save_profile(name: &str, profile: &Profile) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let path = credentials_path()?;
    let mut all: toml::Table = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{} is not valid TOML", path.display()))?,
        Err(_) => toml::Table::new(),
    };
    all.insert(name.to_string(), toml::Value::try_from(profile)?);
    std::fs::create_dir_all(path.parent().expect("credentials path has a parent"))?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(toml::to_string(&all)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The profile `name`, with `EVERSHELL_URL`, `EVERSHELL_SLUG` and
/// `EVERSHELL_API_KEY` overriding the file.
pub fn load_profile(name: &str) -> anyhow::Result<Profile> {
    let path = credentials_path()?;
    let mut profile = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let all: toml::Table = text
                .parse()
                .with_context(|| format!("{} is not valid TOML", path.display()))?;
            match all.get(name) {
                Some(table) => table.clone().try_into()?,
                None => Profile::default(),
            }
        }
        Err(_) => Profile::default(),
    };
    if let Ok(url) = std::env::var("EVERSHELL_URL") {
        profile.url = url;
    }
    if let Ok(slug) = std::env::var("EVERSHELL_SLUG") {
        profile.slug = slug;
    }
    if let Ok(key) = std::env::var("EVERSHELL_API_KEY") {
        profile.api_key = key;
    }
    if profile.url.is_empty() || profile.bearer().is_empty() {
        anyhow::bail!("not logged in: run `evershell up` or `evershell login` (profile {name:?})");
    }
    Ok(profile)
}

/// An authenticated client of one control plane.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub profile: Profile,
}

/// The API answered with its error envelope.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: String,
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} (request_id {})",
            self.status, self.code, self.message, self.request_id
        )?;
        if let Some(Value::Object(fields)) = self.details.as_ref().and_then(|d| d.get("fields")) {
            for (path, message) in fields {
                write!(f, "\n  {path}: {}", message.as_str().unwrap_or_default())?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl Client {
    pub fn new(profile: Profile) -> Client {
        let http = reqwest::Client::builder()
            .build()
            .expect("an http client builds");
        Client { http, profile }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.profile.url.trim_end_matches('/'), path)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(self.profile.bearer())
    }

    /// Sends `request` and decodes a success body, or returns the API error.
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = request
            .send()
            .await
            .context("cannot reach the Evershell API")?;
        decode(response).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> anyhow::Result<T> {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

pub async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> anyhow::Result<T> {
    let status = response.status();
    let body = response.bytes().await.context("reading the API response")?;
    if status.is_success() {
        return serde_json::from_slice(&body).context("decoding the API response");
    }
    let envelope: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let error = &envelope["error"];
    Err(ApiError {
        status: status.as_u16(),
        code: error["code"].as_str().unwrap_or("unknown").to_string(),
        message: error["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string(),
        request_id: error["request_id"].as_str().unwrap_or("-").to_string(),
        details: error.get("details").cloned(),
    }
    .into())
}
