//! TLS to Postgres with rustls. RDS's CAs are in neither the webpki nor the system roots, so
//! `verify-full` trusts exactly these: AWS's RDS certificate authorities and the Amazon Trust
//! Services roots that RDS Proxy's certificates chain to, both compiled in
//! ([`RDS_CA_BUNDLE`], [`crate::aws::AWS_ROOTS`]), or, when `DB_CA_BUNDLE` names one, that PEM
//! bundle alone (a region the compiled-in bundle predates, a self-managed server, the tests).

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

/// AWS's RDS certificate authorities (rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1,
/// per region). Public and long-lived (the earliest expires in 2061); where the file comes
/// from, its SHA-256 and how to regenerate it are in `shared/certs/README.md`.
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-ca-bundle.pem");

/// What `verify-full` trusts: the compiled-in RDS and RDS Proxy CAs.
pub fn compiled_in_roots() -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (name, pem) in [
        ("the compiled-in RDS CA bundle", RDS_CA_BUNDLE),
        ("the compiled-in Amazon roots", crate::aws::AWS_ROOTS),
    ] {
        add_pem(&mut roots, pem, name)?;
    }
    Ok(roots)
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
    #[error("DB_CA_BUNDLE: the CA bundle {path} holds a block that is not valid PEM: {source}")]
    BadPem {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
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
        let provider = Arc::new(postgres_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match (mode, ca_bundle) {
            (SslMode::Disable, _) => return Ok(Self::Plain),
            (SslMode::Require, _) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
            (SslMode::VerifyFull, None) => builder
                .with_root_certificates(compiled_in_roots()?)
                .with_no_client_auth(),
            (SslMode::VerifyFull, Some(path)) => builder
                .with_root_certificates(load_roots(path)?)
                .with_no_client_auth(),
        };
        Ok(Self::Tls(MakeRustlsConnect::new(config)))
    }
}

/// The crypto provider with P-256 first among the key exchange groups. A TLS 1.3 client
/// sends a key share for its first group only; a server that supports none of the shares it
/// got answers with a HelloRetryRequest, a whole round trip on every login. Postgres up to
/// 17 offers exactly one group, its `ssl_ecdh_curve`, whose default (and RDS's) is
/// `prime256v1`; rustls' default first group, the X25519MLKEM768 hybrid (with an X25519
/// share beside it), is not it. The other groups stay offered, in rustls' order.
fn postgres_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .kx_groups
        .sort_by_key(|g| g.name() != rustls::NamedGroup::secp256r1);
    provider
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadBundle {
        path: shown.clone(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    add_pem(&mut roots, &pem, &shown)?;
    Ok(roots)
}

/// Adds every certificate of `pem` to `roots`; a block that does not decode, a certificate
/// that does not parse, or no certificate at all is an error, never skipped.
fn add_pem(roots: &mut RootCertStore, pem: &[u8], shown: &str) -> Result<(), TlsError> {
    let before = roots.len();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|source| TlsError::BadPem {
            path: shown.to_owned(),
            source,
        })?;
        roots.add(cert).map_err(|source| TlsError::BadCertificate {
            path: shown.to_owned(),
            source,
        })?;
    }
    if roots.len() == before {
        return Err(TlsError::EmptyBundle {
            path: shown.to_owned(),
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_is_offered_first_and_every_default_group_stays() {
        let names = |p: &CryptoProvider| p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>();
        let ours = names(&postgres_provider());
        let default = names(&rustls::crypto::aws_lc_rs::default_provider());
        assert_eq!(ours[0], rustls::NamedGroup::secp256r1);
        assert_ne!(
            default[0],
            rustls::NamedGroup::secp256r1,
            "the reordering is needed"
        );
        let (mut a, mut b) = (ours.clone(), default.clone());
        a.sort_by_key(|g| u16::from(*g));
        b.sort_by_key(|g| u16::from(*g));
        assert_eq!(a, b);
    }

    #[test]
    fn the_compiled_in_trust_holds_every_rds_ca_and_the_amazon_roots() {
        let roots = compiled_in_roots().unwrap();
        // The counts shared/certs/README.md records: 87 RDS CAs, 5 Amazon roots.
        assert_eq!(roots.len(), 87 + 5);
        let text = std::str::from_utf8(RDS_CA_BUNDLE).unwrap();
        for ca in ["RSA2048 G1", "RSA4096 G1", "ECC384 G1"] {
            for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
                let subject = format!("Amazon RDS {region} Root CA {ca}");
                assert!(text.contains(&subject), "{subject}");
            }
        }
    }

    #[test]
    fn a_bundle_with_a_broken_block_is_refused_not_skipped() {
        let good = std::str::from_utf8(crate::aws::AWS_ROOTS).unwrap();
        let broken = format!(
            "{good}\n-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
        );
        let mut roots = RootCertStore::empty();
        let err = add_pem(&mut roots, broken.as_bytes(), "test.pem").unwrap_err();
        assert!(matches!(err, TlsError::BadPem { .. }), "{err}");
        let mut roots = RootCertStore::empty();
        let err = add_pem(&mut roots, b"# no certificate here\n", "empty.pem").unwrap_err();
        assert!(matches!(err, TlsError::EmptyBundle { .. }), "{err}");
    }
}
