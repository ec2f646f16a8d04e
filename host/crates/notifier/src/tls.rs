//! TLS client settings for the broker connection (rustls, ring provider): CA bundle
//! (`ssl_ca_file`, else the system bundle as Python's `ssl` uses), optional client
//! certificate (`ssl_cert_file` + `ssl_key_file`). Built once at start so a bad file is a
//! start-up error naming the file, never a panic in the connection loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use amqprs::tls::TlsAdaptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::error::ConfigError;
use crate::url::TlsOptions;

/// Where distributions keep the system CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A ready rustls client configuration.
#[derive(Clone)]
pub(crate) struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl TlsClient {
    pub fn new(opts: &TlsOptions) -> Result<TlsClient, ConfigError> {
        let ca = match &opts.ca_file {
            Some(p) => p.clone(),
            None => SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or_else(|| ConfigError::Tls {
                    path: PathBuf::from(SYSTEM_BUNDLES[0]),
                    reason: "no system CA bundle found; set ssl_ca_file".into(),
                })?,
        };
        let mut roots = RootCertStore::empty();
        let certs = read_certs(&ca)?;
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(tls_err(&ca, "no usable CA certificate in the file"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(&ca, &e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&opts.cert_file, &opts.key_file) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert)?;
                if chain.is_empty() {
                    return Err(tls_err(cert, "no certificate in the file"));
                }
                let key_der =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, &e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| tls_err(key, &format!("client certificate/key rejected: {e}")))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(TlsClient {
            config: Arc::new(config),
            server_name: opts.server_name.clone(),
        })
    }

    /// The adaptor amqprs needs to open a TLS connection to `host`.
    pub fn adaptor(&self, host: &str) -> TlsAdaptor {
        let name = self.server_name.clone().unwrap_or_else(|| host.to_string());
        TlsAdaptor::new(tokio_rustls::TlsConnector::from(self.config.clone()), name)
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(path, &e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(path, &e.to_string()))
}

fn tls_err(path: &Path, reason: &str) -> ConfigError {
    ConfigError::Tls {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}
