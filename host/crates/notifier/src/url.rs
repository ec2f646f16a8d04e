//! oslo.messaging `transport_url` parsing: `rabbit://user:pass@h1:5672,user:pass@h2:5672/vhost?…`
//! into a list of brokers (failover order), a virtual host and connection options, with the
//! password kept out of every `Display`/`Debug` (masked as `***`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;

/// Default AMQP port (oslo uses it whatever the scheme; TLS schemes default to 5671).
pub const AMQP_PORT: u16 = 5672;
/// Default AMQPS port, used when TLS is selected by the scheme or `?ssl=1` and no port is given.
pub const AMQPS_PORT: u16 = 5671;
/// oslo.messaging's `heartbeat_timeout_threshold` default.
pub const DEFAULT_HEARTBEAT_SECS: u16 = 60;

/// One broker of the URL. `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub username: String,
    password: String,
}

impl Broker {
    pub fn new(host: &str, port: u16, username: &str, password: &str) -> Broker {
        Broker {
            host: host.to_string(),
            port,
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// The password, for the AMQP login only.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// `user:***@host:port` (IPv6 hosts in brackets).
    pub fn masked(&self) -> String {
        let mask = if self.password.is_empty() { "" } else { ":***" };
        let user = percent_encode_userinfo(&self.username);
        if self.host.contains(':') {
            format!("{user}{mask}@[{}]:{}", self.host, self.port)
        } else {
            format!("{user}{mask}@{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// TLS settings (oslo's `[oslo_messaging_rabbit] ssl`, `ssl_ca_file`, `ssl_cert_file`,
/// `ssl_key_file`; also accepted as URL query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA bundle (PEM) to verify the broker; `None` = the built-in web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Name to verify in the broker certificate; `None` = the broker's host.
    pub server_name: Option<String>,
}

/// A parsed `transport_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct TransportUrl {
    /// `rabbit`, `amqp`, `rabbit+ssl` or `amqps`, as written.
    pub scheme: String,
    /// Brokers in failover order (at least one).
    pub brokers: Vec<Broker>,
    /// Virtual host, percent-decoded; `/` when the URL has none.
    pub virtual_host: String,
    /// AMQP heartbeat in seconds (`?heartbeat=`), 0 = let the broker decide.
    pub heartbeat: u16,
    /// `Some` when TLS is on (scheme `rabbit+ssl`/`amqps` or `?ssl=1`).
    pub tls: Option<TlsOptions>,
    /// Query parameters that were not understood (reported as warnings by the notifier).
    pub ignored_params: Vec<String>,
}

impl fmt::Debug for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl TransportUrl {
    /// Parse an oslo.messaging transport URL. `rabbit://` alone means
    /// `guest:guest@localhost:5672/` (oslo's defaults).
    pub fn parse(url: &str) -> Result<TransportUrl, ConfigError> {
        let bad = |reason: String| ConfigError::InvalidUrl {
            url: mask_raw_url(url),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad("expected <scheme>://…, e.g. rabbit://user:pass@host:5672/".into())
        })?;
        let scheme_tls = match scheme {
            "rabbit" | "amqp" => false,
            "rabbit+ssl" | "amqps" => true,
            other => {
                return Err(bad(format!(
                "unsupported scheme '{other}' (use rabbit://, amqp://, rabbit+ssl:// or amqps://)"
            )))
            }
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (netloc, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };

        let mut heartbeat = DEFAULT_HEARTBEAT_SECS;
        let mut tls_flag: Option<bool> = None;
        let mut tls = TlsOptions::default();
        let mut ignored = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).map_err(|e| bad(format!("query parameter '{k}': {e}")))?;
            match k {
                "heartbeat" | "heartbeat_timeout_threshold" => {
                    heartbeat = v.parse().map_err(|_| {
                        bad(format!(
                            "heartbeat must be an integer 0..65535 (seconds), got '{v}'"
                        ))
                    })?
                }
                "ssl" => {
                    tls_flag = Some(parse_bool(&v).ok_or_else(|| {
                        bad(format!("ssl must be true/false/1/0/yes/no, got '{v}'"))
                    })?)
                }
                "ssl_ca_file" => tls.ca_file = Some(PathBuf::from(v)),
                "ssl_cert_file" => tls.cert_file = Some(PathBuf::from(v)),
                "ssl_key_file" => tls.key_file = Some(PathBuf::from(v)),
                "ssl_server_hostname" => tls.server_name = Some(v),
                _ => ignored.push(k.to_string()),
            }
        }
        let tls_on = tls_flag.unwrap_or(scheme_tls);
        let default_port = if tls_on { AMQPS_PORT } else { AMQP_PORT };

        let mut brokers = Vec::new();
        for (i, entry) in netloc.split(',').enumerate() {
            if entry.is_empty() && netloc.contains(',') {
                return Err(bad(format!("broker #{} is empty", i + 1)));
            }
            brokers.push(
                parse_broker(entry, default_port)
                    .map_err(|e| bad(format!("broker #{}: {e}", i + 1)))?,
            );
        }

        let virtual_host = match path {
            None | Some("") => "/".to_string(),
            Some(p) => percent_decode(p).map_err(|e| bad(format!("virtual host: {e}")))?,
        };
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(bad(
                "ssl_cert_file and ssl_key_file must be given together".into()
            ));
        }
        Ok(TransportUrl {
            scheme: scheme.to_string(),
            brokers,
            virtual_host,
            heartbeat,
            tls: tls_on.then_some(tls),
            ignored_params: ignored,
        })
    }

    /// The URL with every password replaced by `***`.
    pub fn masked(&self) -> String {
        let hosts: Vec<String> = self.brokers.iter().map(Broker::masked).collect();
        let vhost = if self.virtual_host == "/" {
            String::new()
        } else {
            percent_encode_path(&self.virtual_host)
        };
        format!("{}://{}/{}", self.scheme, hosts.join(","), vhost)
    }
}

fn parse_broker(entry: &str, default_port: u16) -> Result<Broker, String> {
    let (userinfo, hostport) = match entry.rfind('@') {
        Some(i) => (Some(&entry[..i]), &entry[i + 1..]),
        None => (None, entry),
    };
    let (username, password) = match userinfo {
        None => ("guest".to_string(), "guest".to_string()),
        Some(ui) => {
            let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
            (percent_decode(u)?, percent_decode(p)?)
        }
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in host '{hostport}'"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected '{p}' after IPv6 address"))?,
            ),
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port must be 1..65535, got '{p}'"))?,
    };
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        percent_decode(&host)?
    };
    Ok(Broker {
        host,
        port,
        username,
        password,
    })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `%XX` decoding (UTF-8). `+` is kept as is (userinfo and paths, not form data).
pub(crate) fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "invalid percent-escape (expected %XX)".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-decoded text is not UTF-8".to_string())
}

fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_encode_userinfo(s: &str) -> String {
    percent_encode(s, b"")
}

fn percent_encode_path(s: &str) -> String {
    percent_encode(s, b"")
}

/// Best-effort masking of a URL that failed to parse: anything between `:` and `@` in the
/// authority part becomes `***`, so even a malformed URL never leaks its password.
pub(crate) fn mask_raw_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (netloc, tail) = rest.split_at(end);
    let masked: Vec<String> = netloc
        .split(',')
        .map(|entry| match entry.rfind('@') {
            Some(at) => {
                let ui = &entry[..at];
                let user = ui.split(':').next().unwrap_or("");
                if ui.contains(':') {
                    format!("{user}:***{}", &entry[at..])
                } else {
                    entry.to_string()
                }
            }
            None => entry.to_string(),
        })
        .collect();
    // Query values may carry nothing secret we know of, but keep only the keys to be safe.
    let tail = match tail.split_once('?') {
        Some((p, q)) => {
            let keys: Vec<&str> = q
                .split('&')
                .map(|kv| kv.split('=').next().unwrap_or(""))
                .collect();
            format!(
                "{p}?{}",
                keys.iter()
                    .map(|k| format!("{k}=…"))
                    .collect::<Vec<_>>()
                    .join("&")
            )
        }
        None => tail.to_string(),
    };
    format!("{scheme}{}{tail}", masked.join(","))
}

/// Retry/backoff settings of the connection loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// First delay after a failed round over all brokers.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        // oslo: rabbit_retry_interval 1 s, rabbit_interval_max 30 s.
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Delay before round `attempt` (0-based): `min(max, initial·2^attempt)`, then "equal
    /// jitter" (uniform in [d/2, d]) so that many agents restarted together do not reconnect
    /// in lock-step.
    pub fn delay(&self, attempt: u32, rng: &mut impl rand::Rng) -> Duration {
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.min(30)))
            .min(self.max);
        let half = base / 2;
        let jitter_ns = rng.gen_range(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        half + Duration::from_nanos(jitter_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_from_bare_scheme() {
        let u = TransportUrl::parse("rabbit://").unwrap();
        assert_eq!(
            u.brokers,
            vec![Broker::new("localhost", 5672, "guest", "guest")]
        );
        assert_eq!(u.virtual_host, "/");
        assert_eq!(u.heartbeat, 60);
        assert!(u.tls.is_none());
    }

    #[test]
    fn several_brokers_vhost_and_decoding() {
        let u = TransportUrl::parse(
            "rabbit://us%40er:p%3Ass%2Fw@h1:5673,bob:secret@[::1]:5674,h3/my%2Fvhost?heartbeat=10",
        )
        .unwrap();
        assert_eq!(u.brokers.len(), 3);
        assert_eq!(u.brokers[0], Broker::new("h1", 5673, "us@er", "p:ss/w"));
        assert_eq!(u.brokers[1], Broker::new("::1", 5674, "bob", "secret"));
        assert_eq!(u.brokers[2], Broker::new("h3", 5672, "guest", "guest"));
        assert_eq!(u.virtual_host, "my/vhost");
        assert_eq!(u.heartbeat, 10);
        let m = u.masked();
        assert_eq!(
            m,
            "rabbit://us%40er:***@h1:5673,bob:***@[::1]:5674,guest:***@h3:5672/my%2Fvhost"
        );
        assert!(!format!("{u:?}").contains("secret"));
        assert!(!format!("{u}").contains("p:ss"));
    }

    #[test]
    fn tls_schemes_and_options() {
        let u = TransportUrl::parse("rabbit+ssl://u:p@h/").unwrap();
        assert_eq!(u.brokers[0].port, 5671);
        assert_eq!(u.tls, Some(TlsOptions::default()));
        let u = TransportUrl::parse(
            "amqp://u:p@h:5672/?ssl=1&ssl_ca_file=/ca.pem&ssl_cert_file=/c.pem&ssl_key_file=/k.pem",
        )
        .unwrap();
        let t = u.tls.unwrap();
        assert_eq!(t.ca_file.unwrap(), PathBuf::from("/ca.pem"));
        assert_eq!(t.cert_file.unwrap(), PathBuf::from("/c.pem"));
        let u = TransportUrl::parse("amqps://u:p@h/?ssl=false").unwrap();
        assert!(u.tls.is_none());
        assert_eq!(u.brokers[0].port, 5672);
        assert!(TransportUrl::parse("amqp://h/?ssl_cert_file=/c.pem&ssl=1").is_err());
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "kafka://u:topsecret@h/",
            "rabbit://u:topsecret@h:99999/",
            "rabbit://u:topsecret@h:5672/?heartbeat=x",
            "rabbit://u:topsecret@h:5672/%zz",
            "rabbit://u:topsecret@[::1/",
        ] {
            let e = TransportUrl::parse(url).unwrap_err().to_string();
            assert!(!e.contains("topsecret"), "{e}");
            assert!(e.contains("u:***@"), "{e}");
        }
    }

    #[test]
    fn unknown_query_params_are_reported() {
        let u = TransportUrl::parse("rabbit://h/?foo=1&heartbeat=0").unwrap();
        assert_eq!(u.ignored_params, vec!["foo".to_string()]);
        assert_eq!(u.heartbeat, 0);
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let d0 = b.delay(0, &mut rng);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d3 = b.delay(3, &mut rng);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
            let d20 = b.delay(20, &mut rng);
            assert!(d20 >= Duration::from_millis(500) && d20 <= Duration::from_secs(1));
        }
    }
}
