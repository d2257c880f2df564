//! The `[auth.oidc]` table of the server file and the validated settings
//! it becomes.

use std::path::PathBuf;

use reqwest::Url;
use zeroize::Zeroizing;

/// `[auth.oidc]` as written. Exactly one of `client_secret`,
/// `client_secret_file` and `client_secret_env` gives the client secret.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcFile {
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Zeroizing<String>>,
    /// A file holding the secret (trailing newlines are removed).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The name of an environment variable of `evershell up` holding the
    /// secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Default `["openid", "email", "profile"]`; must include `openid`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// What a sign-in page calls the provider; default `OpenID Connect`.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Validated OpenID Connect settings.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer identifier, exactly as the provider spells it in its
    /// discovery document and ID tokens.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
    pub scopes: Vec<String>,
    pub display_name: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("display_name", &self.display_name)
            .finish()
    }
}

/// Why `[auth.oidc]` was refused.
#[derive(Debug, thiserror::Error)]
pub enum OidcSettingsError {
    #[error("auth.oidc.issuer {0:?}: expected an https URL without query or fragment (http only on loopback)")]
    Issuer(String),
    #[error("auth.oidc.client_id: must not be empty")]
    ClientId,
    #[error("auth.oidc: give exactly one of client_secret, client_secret_file, client_secret_env")]
    SecretSource,
    #[error("auth.oidc.client_secret_file {path}: cannot read")]
    SecretFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("auth.oidc.client_secret_env: variable {0} is not set")]
    SecretEnv(String),
    #[error("auth.oidc: the client secret is empty")]
    EmptySecret,
    #[error("auth.oidc.scopes: must include openid, and no scope may be empty or hold spaces")]
    Scopes,
}

impl OidcFile {
    /// Validates the table, reading the secret from where it points;
    /// `env` looks environment variables up (the process environment in
    /// `evershell up`).
    pub fn resolve(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<OidcSettings, OidcSettingsError> {
        let issuer = self.issuer.trim().to_string();
        if !acceptable_issuer(&issuer) {
            return Err(OidcSettingsError::Issuer(issuer));
        }
        let client_id = self.client_id.trim().to_string();
        if client_id.is_empty() {
            return Err(OidcSettingsError::ClientId);
        }
        let client_secret = match (
            self.client_secret,
            self.client_secret_file,
            self.client_secret_env,
        ) {
            (Some(inline), None, None) => inline,
            (None, Some(path), None) => match std::fs::read_to_string(&path) {
                Ok(text) => Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string()),
                Err(source) => return Err(OidcSettingsError::SecretFile { path, source }),
            },
            (None, None, Some(name)) => {
                Zeroizing::new(env(&name).ok_or(OidcSettingsError::SecretEnv(name))?)
            }
            _ => return Err(OidcSettingsError::SecretSource),
        };
        if client_secret.is_empty() {
            return Err(OidcSettingsError::EmptySecret);
        }
        let scopes = self
            .scopes
            .unwrap_or_else(|| ["openid", "email", "profile"].map(String::from).to_vec());
        let well_formed = scopes
            .iter()
            .all(|s| !s.is_empty() && !s.contains(char::is_whitespace));
        if !well_formed || !scopes.iter().any(|s| s == "openid") {
            return Err(OidcSettingsError::Scopes);
        }
        Ok(OidcSettings {
            issuer,
            client_id,
            client_secret,
            scopes,
            display_name: self
                .display_name
                .unwrap_or_else(|| "OpenID Connect".to_string()),
        })
    }
}

/// An issuer is an https URL with no query or fragment (OpenID Connect
/// Discovery 1.0 §3); plain http is accepted for loopback hosts only, for
/// providers running on the same machine.
pub(super) fn acceptable_issuer(issuer: &str) -> bool {
    let Ok(url) = Url::parse(issuer) else {
        return false;
    };
    if url.query().is_some() || url.fragment().is_some() || url.host().is_none() {
        return false;
    }
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(&url),
        _ => false,
    }
}

/// Whether `url` names this machine: `localhost` or a loopback address.
pub(super) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(issuer: &str) -> OidcFile {
        OidcFile {
            issuer: issuer.to_string(),
            client_id: "evershell".to_string(),
            client_secret: Some(Zeroizing::new("s3cret".to_string())),
            ..OidcFile::default()
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn issuers_are_https_or_loopback_http_without_query() {
        for good in [
            "https://idp.acme.test",
            "https://idp.acme.test/realms/main",
            "http://127.0.0.1:5556",
            "http://localhost:8080/dex",
            "http://[::1]:9000",
        ] {
            assert!(file(good).resolve(no_env).is_ok(), "{good}");
        }
        for bad in [
            "http://idp.acme.test",
            "http://10.0.0.1",
            "https://idp.acme.test/?tenant=1",
            "https://idp.acme.test/#x",
            "idp.acme.test",
            "ftp://idp.acme.test",
        ] {
            assert!(
                matches!(file(bad).resolve(no_env), Err(OidcSettingsError::Issuer(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_secret_comes_from_exactly_one_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").unwrap();

        let from_file = OidcFile {
            client_secret: None,
            client_secret_file: Some(path.clone()),
            ..file("https://idp.acme.test")
        };
        let settings = from_file.resolve(no_env).unwrap();
        assert_eq!(settings.client_secret.as_str(), "from-file");
        assert!(!format!("{settings:?}").contains("from-file"));

        let from_env = OidcFile {
            client_secret: None,
            client_secret_env: Some("IDP_SECRET".to_string()),
            ..file("https://idp.acme.test")
        };
        let env = |name: &str| (name == "IDP_SECRET").then(|| "from-env".to_string());
        assert_eq!(
            from_env.resolve(env).unwrap().client_secret.as_str(),
            "from-env"
        );

        let unset = OidcFile {
            client_secret: None,
            client_secret_env: Some("IDP_SECRET".to_string()),
            ..file("https://idp.acme.test")
        };
        assert!(matches!(
            unset.resolve(no_env),
            Err(OidcSettingsError::SecretEnv(_))
        ));
        let two = OidcFile {
            client_secret_file: Some(path),
            ..file("https://idp.acme.test")
        };
        assert!(matches!(
            two.resolve(no_env),
            Err(OidcSettingsError::SecretSource)
        ));
        let none = OidcFile {
            client_secret: None,
            ..file("https://idp.acme.test")
        };
        assert!(matches!(
            none.resolve(no_env),
            Err(OidcSettingsError::SecretSource)
        ));
    }

    #[test]
    fn scopes_default_to_openid_email_profile_and_must_include_openid() {
        let settings = file("https://idp.acme.test").resolve(no_env).unwrap();
        assert_eq!(settings.scopes, ["openid", "email", "profile"]);
        assert_eq!(settings.display_name, "OpenID Connect");
        for bad in [vec!["email"], vec!["openid", "a b"], vec!["openid", ""]] {
            let f = OidcFile {
                scopes: Some(bad.iter().map(|s| s.to_string()).collect()),
                ..file("https://idp.acme.test")
            };
            assert!(
                matches!(f.resolve(no_env), Err(OidcSettingsError::Scopes)),
                "{bad:?}"
            );
        }
    }
}
