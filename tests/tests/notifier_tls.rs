//! TLS to the broker (`rabbit+ssl://…?ssl_ca_file=…&ssl_cert_file=…&ssl_key_file=…`): the
//! RabbitMQ here only listens in plain text, so the test puts a TLS-terminating proxy in
//! front of it (rustls server, certificates made by rcgen at test time, client certificate
//! required) and checks delivery through it, a missing client certificate, an untrusted
//! server certificate, and an unreadable CA file.

mod notifier_common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use longshore_notifier::{Notifier, NotifierError};
use longshore_publisher::{PublishError, Publisher};
use notifier_common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        let ca_key = KeyPair::generate().unwrap();
        let ca = p.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    /// A leaf certificate for `names` and its key.
    fn leaf(&self, names: &[&str]) -> (rcgen::Certificate, KeyPair) {
        let p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert, key)
    }
}

/// TLS in front, plain TCP to RabbitMQ behind.
struct TlsProxy {
    port: u16,
    with_client_cert: Arc<AtomicU64>,
    rt: Option<tokio::runtime::Runtime>,
}

impl TlsProxy {
    fn start(config: ServerConfig) -> TlsProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let with_client_cert = Arc::new(AtomicU64::new(0));
        let counter = with_client_cert.clone();
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    break;
                };
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty())
                    {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    let Ok(mut broker) = tokio::net::TcpStream::connect(BROKER).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                });
            }
        });
        TlsProxy {
            port,
            with_client_cert,
            rt: Some(rt),
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn tls_with_client_certificate_through_a_tls_proxy() {
    let logs = logs();
    let amqp = Amqp::connect();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("longshore test CA");
    let (server, server_key) = pki.leaf(&["localhost", "127.0.0.1"]);
    let (client, client_key) = pki.leaf(&["longshore-agent"]);
    let ca_pem = write(dir.path(), "ca.pem", &pki.ca.pem());
    let cert_pem = write(dir.path(), "client.pem", &client.pem());
    let key_pem = write(dir.path(), "client.key", &client_key.serialize_pem());
    let other_ca = write(
        dir.path(),
        "other-ca.pem",
        &Pki::new("someone else").ca.pem(),
    );

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let server_config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    let proxy = TlsProxy::start(server_config);
    let port = proxy.port;

    // 1. CA + client certificate: delivered through TLS.
    let cfg = config(&format!(
        "rabbit+ssl://guest:guest@127.0.0.1:{port}/?ssl_ca_file={ca_pem}&ssl_cert_file={cert_pem}&ssl_key_file={key_pem}"
    ));
    let (exchange, queue) = (cfg.exchange.clone(), cfg.routing_keys()[0].clone());
    assert!(cfg.transport_url.tls.is_some());
    let n = Notifier::new(cfg.clone()).unwrap();
    assert_eq!(
        n.describe(),
        format!("notifier://rabbit+ssl://guest:***@127.0.0.1:{port}/")
    );
    n.publish(batch("cpu", 0, 4)).unwrap();
    n.flush(Duration::from_secs(30)).unwrap();
    n.close(Duration::from_secs(10)).unwrap();
    let got = amqp.take(
        &queue,
        1,
        Duration::from_secs(10),
        Duration::from_millis(200),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sample_ids().len(), 4);
    assert!(
        proxy.with_client_cert.load(Ordering::SeqCst) >= 1,
        "client certificate presented"
    );

    // 2. No client certificate: the TLS server refuses; error logged, retried, no crash.
    let mut no_cert = cfg.clone();
    no_cert.transport_url = longshore_notifier::TransportUrl::parse(&format!(
        "amqp://guest:guest@127.0.0.1:{port}/?ssl=1&ssl_ca_file={ca_pem}"
    ))
    .unwrap();
    let n = Notifier::new(no_cert).unwrap();
    let d = n.describe();
    let errs = logs.wait_for(2, Duration::from_secs(20), |l| {
        l.contains(&d) && l.contains("cannot connect")
    });
    assert!(errs.len() >= 2, "{errs:?}");
    assert!(
        !errs[0].contains("login refused"),
        "a TLS failure is not a login failure: {}",
        errs[0]
    );
    n.publish(batch("cpu", 1, 1)).unwrap();
    assert!(matches!(
        n.flush(Duration::from_millis(100)),
        Err(PublishError::Timeout { .. })
    ));
    drop(n);

    // 3. A CA that did not sign the server certificate: the client refuses the server.
    let mut wrong_ca = cfg.clone();
    wrong_ca.transport_url = longshore_notifier::TransportUrl::parse(&format!(
        "rabbit+ssl://guest:guest@127.0.0.1:{port}/?ssl_ca_file={other_ca}&ssl_cert_file={cert_pem}&ssl_key_file={key_pem}"
    ))
    .unwrap();
    let n = Notifier::new(wrong_ca).unwrap();
    let d = n.describe();
    let errs = logs.wait_for(1, Duration::from_secs(20), |l| {
        l.contains(&d) && l.contains("cannot connect")
    });
    assert!(!errs.is_empty());
    assert!(
        errs[0].to_lowercase().contains("certificate"),
        "{}",
        errs[0]
    );
    drop(n);

    // 4. An unreadable CA file: a start-up error naming the file.
    let mut missing = cfg.clone();
    missing.transport_url = longshore_notifier::TransportUrl::parse(&format!(
        "rabbit+ssl://guest:guest@127.0.0.1:{port}/?ssl_ca_file=/nonexistent/ca.pem"
    ))
    .unwrap();
    match Notifier::new(missing) {
        Err(e @ NotifierError::Config(_)) => {
            assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a missing CA file must fail at start"),
    }
    assert!(logs.all().iter().all(|l| !l.contains("guest:guest")));
    amqp.cleanup(&exchange, &[queue]);
}
