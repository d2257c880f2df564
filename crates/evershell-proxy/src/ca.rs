//! The certificate authority: the installation's platform CA, which signs the
//! leaf certificates the proxy presents to agents, and (in tests and the demo)
//! the CA of loopback upstream servers.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

mod leaves;

pub(crate) use leaves::LeafCache;

/// Failure to create, load or use a CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate authority: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("certificate authority: pem holds no {0}")]
    MissingPem(&'static str),
    #[error("certificate authority: invalid host name {0:?}")]
    InvalidName(String),
    #[error("certificate authority: tls refused the issued certificate")]
    Tls(#[from] rustls::Error),
}

/// A CA that can issue server certificates. Its key never leaves the process
/// that loaded it.
pub struct CertificateAuthority {
    cert: rcgen::Certificate,
    key: KeyPair,
    cert_pem: String,
}

/// A server certificate chain and its key, ready for a rustls config.
pub struct IssuedCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertificateAuthority {
    /// A new CA named `common_name`, valid for ten years from yesterday.
    pub fn generate(common_name: &str) -> Result<CertificateAuthority, CaError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Evershell");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        Ok(CertificateAuthority {
            cert,
            key,
            cert_pem,
        })
    }

    /// Loads a CA from its certificate and PKCS#8 key in PEM form.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority, CaError> {
        let key = KeyPair::from_pem(key_pem)?;
        let params = CertificateParams::from_ca_cert_pem(cert_pem)?;
        // Re-signing with the same key and parameters yields a certificate
        // with the same subject and key, which is all that leaf verification
        // needs; the original PEM is kept for distribution.
        let cert = params.self_signed(&key)?;
        Ok(CertificateAuthority {
            cert,
            key,
            cert_pem: cert_pem.to_string(),
        })
    }

    /// The CA certificate in PEM, as distributed to sandboxes.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key in PKCS#8 PEM, for storing it encrypted.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The CA certificate in DER, as the original PEM holds it.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, CaError> {
        let mut reader = self.cert_pem.as_bytes();
        let first = rustls_pemfile::certs(&mut reader).next();
        first
            .and_then(Result::ok)
            .ok_or(CaError::MissingPem("certificate"))
    }

    /// Issues a server certificate for `names` (DNS names or IP literals),
    /// valid for 30 days from yesterday.
    pub fn issue(&self, names: &[&str]) -> Result<IssuedCert, CaError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        for name in names {
            let san = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    (*name)
                        .try_into()
                        .map_err(|_| CaError::InvalidName(name.to_string()))?,
                ),
            };
            params.subject_alt_names.push(san);
        }
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let leaf = params.signed_by(&key, &self.cert, &self.key)?;

        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(IssuedCert {
            chain: vec![leaf.der().clone(), self.cert_der()?],
            key: key_der,
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn a_reloaded_ca_issues_certificates_that_chain_to_the_original_pem() {
        let ca = CertificateAuthority::generate("test ca").expect("generate");
        let again = CertificateAuthority::from_pem(ca.cert_pem(), &ca.key_pem()).expect("reload");
        let issued = again
            .issue(&["git.evershell.test", "127.0.0.1"])
            .expect("issue");
        assert_eq!(issued.chain.len(), 2);

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().expect("der")).expect("root");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .expect("verifier");
        let name = rustls::pki_types::ServerName::try_from("git.evershell.test").expect("name");
        let now = rustls::pki_types::UnixTime::now();
        verifier
            .verify_server_cert(&issued.chain[0], &issued.chain[1..], &name, &[], now)
            .expect("leaf verifies against the original CA pem");
    }
}
