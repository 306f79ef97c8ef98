//! TLS to Postgres with rustls. RDS's CA is in neither the webpki nor the system roots, so
//! `verify-full` trusts exactly the PEM bundle it is given.

use std::{fmt, path::Path, str::FromStr, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the connection to Postgres is protected, as libpq names the modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext. Only for a database on the same host.
    Disable,
    /// Encrypted, server certificate not checked.
    Require,
    /// Encrypted, certificate chain checked against the CA bundle and the host name matched.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "disable" => Ok(Self::Disable),
            "require" => Ok(Self::Require),
            "verify-full" => Ok(Self::VerifyFull),
            _ => Err(()),
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull => "verify-full",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("DB_CA_BUNDLE: cannot read the CA bundle {path}: {source}")]
    ReadBundle {
        path: String,
        source: std::io::Error,
    },
    #[error("DB_CA_BUNDLE: the CA bundle {path} holds no PEM certificate")]
    EmptyBundle { path: String },
    #[error("DB_CA_BUNDLE: the CA bundle {path} holds an invalid certificate: {source}")]
    BadCertificate { path: String, source: rustls::Error },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The connector handed to tokio-postgres, built once at cold start.
#[derive(Clone)]
pub enum Connector {
    Plain,
    Tls(MakeRustlsConnect),
}

impl Connector {
    pub fn new(mode: SslMode, ca_bundle: Option<&Path>) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match (mode, ca_bundle) {
            (SslMode::Disable, _) => return Ok(Self::Plain),
            (SslMode::Require, _) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
            (SslMode::VerifyFull, None) => {
                return Err(TlsError::EmptyBundle {
                    path: "(none given)".to_owned(),
                });
            }
            (SslMode::VerifyFull, Some(path)) => builder
                .with_root_certificates(load_roots(path)?)
                .with_no_client_auth(),
        };
        Ok(Self::Tls(MakeRustlsConnect::new(config)))
    }
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadBundle {
        path: shown.clone(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        roots.add(cert).map_err(|source| TlsError::BadCertificate {
            path: shown.clone(),
            source,
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::EmptyBundle { path: shown });
    }
    Ok(roots)
}

/// libpq's `require`: the channel is encrypted and the handshake signatures are checked, but
/// the certificate is not, so it stops eavesdropping and not impersonation.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
