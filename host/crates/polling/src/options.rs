//! The configuration options the polling engine reads (`[polling]`, plus
//! `[DEFAULT] sample_source`, `[DEFAULT] graceful_shutdown_timeout` and
//! `[publisher] telemetry_secret`), their specs for the host, and their validation.

use std::time::Duration;

use longshore_plugin_api::{Config, OptionKind, OptionSpec, Value, ValueRef};

/// Ceilometer's default `[publisher] telemetry_secret`.
pub const DEFAULT_TELEMETRY_SECRET: &str = "change this for valid signing";
/// Default `[polling] pollster_timeout` cap when it is left at 0 (auto).
pub const AUTO_TIMEOUT_CAP: Duration = Duration::from_secs(60);

/// The engine's settings, read from the host configuration.
#[derive(Debug, Clone)]
pub struct PollingOptions {
    /// `[polling] cfg_file`: the polling definition (see `find_definition_file`).
    pub cfg_file: String,
    /// `[polling] batch_size`: messages per batch; 0 = one message per batch.
    pub batch_size: usize,
    /// `[polling] threads_to_process_pollsters`: pollsters of one source run in parallel
    /// on this many threads; 0 = one thread per pollster.
    pub threads_to_process_pollsters: usize,
    /// `[polling] workers`: threads running interval tasks; 0 = one per task, so a slow
    /// task never delays another.
    pub workers: usize,
    /// `[polling] pollster_timeout`: the longest one plugin call (a pollster's
    /// `get_samples` or a discovery) may take before it is cancelled and abandoned.
    /// None = auto: the task's interval, at most 60 s.
    pub pollster_timeout: Option<Duration>,
    /// `[polling] max_backoff_interval`: the cap of the doubling interval of a pollster
    /// that keeps failing (collectd's `MaxReadInterval`).
    pub max_backoff_interval: Duration,
    /// `[publisher] telemetry_secret`: signs messages; empty = empty signature.
    pub telemetry_secret: String,
    /// `[DEFAULT] sample_source`: the `source` of samples that set none.
    pub sample_source: String,
    /// `[DEFAULT] graceful_shutdown_timeout`: the bound on a clean stop.
    pub shutdown_timeout: Duration,
}

impl Default for PollingOptions {
    fn default() -> Self {
        PollingOptions {
            cfg_file: "polling.yaml".to_string(),
            batch_size: 50,
            threads_to_process_pollsters: 1,
            workers: 0,
            pollster_timeout: None,
            max_backoff_interval: Duration::from_secs(86_400),
            telemetry_secret: DEFAULT_TELEMETRY_SECRET.to_string(),
            sample_source: "openstack".to_string(),
            shutdown_timeout: Duration::from_secs(60),
        }
    }
}

/// An option with an unusable value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("option [{section}] {option} = {value}: {problem}")]
pub struct OptionsError {
    pub section: String,
    pub option: String,
    pub value: String,
    pub problem: String,
}

/// Every option the engine reads, for the host to validate and document.
pub fn options() -> Vec<OptionSpec> {
    use OptionKind::*;
    vec![
        OptionSpec::new(
            "polling",
            "cfg_file",
            Str,
            "polling.yaml",
            "The polling definition (sources, intervals, meters). A relative name is also \
             looked up in the configuration directories, ~/.longshore, ~, /etc/longshore, \
             /etc/ceilometer and /etc.",
        ),
        OptionSpec::new(
            "polling",
            "batch_size",
            Int,
            50,
            "Samples per published batch (notification); 0 sends each sample alone. \
             Batches never mix pollsters or sources.",
        ),
        OptionSpec::new(
            "polling",
            "threads_to_process_pollsters",
            Int,
            1,
            "Pollsters of one source polled in parallel; 0 means one thread per pollster.",
        ),
        OptionSpec::new(
            "polling",
            "workers",
            Int,
            0,
            "Threads running interval tasks; 0 means one per distinct interval, so a slow \
             task never delays another.",
        ),
        OptionSpec::new(
            "polling",
            "pollster_timeout",
            Float,
            0.0,
            "Seconds one pollster or discovery call may take before it is cancelled and \
             reported; its task moves on. 0 means the task's interval, at most 60 s.",
        ),
        OptionSpec::new(
            "polling",
            "max_backoff_interval",
            Int,
            86_400,
            "A pollster that fails outright is polled at double its previous interval after \
             each consecutive failure, up to this many seconds; one success resets it.",
        ),
        OptionSpec::new(
            "publisher",
            "telemetry_secret",
            Str,
            DEFAULT_TELEMETRY_SECRET,
            "Secret signing every sample (message_signature); empty means no signature.",
        )
        .secret(),
        OptionSpec::new(
            "DEFAULT",
            "sample_source",
            Str,
            "openstack",
            "Source name of the samples this agent sends.",
        ),
        OptionSpec::new(
            "DEFAULT",
            "graceful_shutdown_timeout",
            Int,
            60,
            "Seconds a stop waits for running pollsters and the publisher before giving up.",
        ),
    ]
}

fn bad(section: &str, option: &str, value: &Value, problem: &str) -> OptionsError {
    OptionsError {
        section: section.to_string(),
        option: option.to_string(),
        value: format!("{value:?}"),
        problem: problem.to_string(),
    }
}

/// An integer option; numeric strings are accepted (configuration files are text).
fn int(cfg: &Config, section: &str, option: &str) -> Result<Option<i64>, OptionsError> {
    let Some(v) = cfg.get(section, option) else {
        return Ok(None);
    };
    match v.get() {
        ValueRef::Null => Ok(None),
        ValueRef::Int(i) => Ok(Some(i)),
        ValueRef::Str(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(section, option, v, "expected an integer")),
        _ => Err(bad(section, option, v, "expected an integer")),
    }
}

fn float(cfg: &Config, section: &str, option: &str) -> Result<Option<f64>, OptionsError> {
    let Some(v) = cfg.get(section, option) else {
        return Ok(None);
    };
    let f = match v.get() {
        ValueRef::Null => return Ok(None),
        ValueRef::Int(i) => i as f64,
        ValueRef::Float(f) => f,
        ValueRef::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| bad(section, option, v, "expected a number of seconds"))?,
        _ => return Err(bad(section, option, v, "expected a number of seconds")),
    };
    if !(0.0..=1e9).contains(&f) {
        return Err(bad(
            section,
            option,
            v,
            "expected a number of seconds, 0 or more",
        ));
    }
    Ok(Some(f))
}

fn string(cfg: &Config, section: &str, option: &str) -> Result<Option<String>, OptionsError> {
    let Some(v) = cfg.get(section, option) else {
        return Ok(None);
    };
    match v.get() {
        ValueRef::Null => Ok(None),
        ValueRef::Str(s) => Ok(Some(s.to_string())),
        _ => Err(bad(section, option, v, "expected a string")),
    }
}

fn non_negative(
    cfg: &Config,
    section: &str,
    option: &str,
    default: usize,
    problem: &str,
) -> Result<usize, OptionsError> {
    match int(cfg, section, option)? {
        None => Ok(default),
        Some(i) => usize::try_from(i).map_err(|_| {
            bad(
                section,
                option,
                cfg.get(section, option).unwrap_or(&Value::NULL),
                problem,
            )
        }),
    }
}

impl PollingOptions {
    /// Read and validate the options; unset options take their defaults.
    pub fn from_config(cfg: &Config) -> Result<PollingOptions, OptionsError> {
        let d = PollingOptions::default();
        let batch_size = non_negative(
            cfg,
            "polling",
            "batch_size",
            d.batch_size,
            "must be 0 (one sample per batch) or more (Ceilometer sends an empty \
             notification first for a negative value)",
        )?;
        let threads = non_negative(
            cfg,
            "polling",
            "threads_to_process_pollsters",
            d.threads_to_process_pollsters,
            "must be 0 (one thread per pollster) or more",
        )?;
        let workers = non_negative(
            cfg,
            "polling",
            "workers",
            d.workers,
            "must be 0 (one per interval task) or more",
        )?;
        let pollster_timeout = match float(cfg, "polling", "pollster_timeout")? {
            None => None,
            Some(0.0) => None,
            Some(f) => Some(Duration::from_secs_f64(f)),
        };
        let max_backoff = match int(cfg, "polling", "max_backoff_interval")? {
            None => d.max_backoff_interval,
            Some(i) if i > 0 => Duration::from_secs(i as u64),
            Some(_) => {
                return Err(bad(
                    "polling",
                    "max_backoff_interval",
                    cfg.get("polling", "max_backoff_interval")
                        .unwrap_or(&Value::NULL),
                    "must be a positive number of seconds",
                ))
            }
        };
        let shutdown_timeout = match int(cfg, "DEFAULT", "graceful_shutdown_timeout")? {
            None => d.shutdown_timeout,
            Some(i) if i >= 0 => Duration::from_secs(i as u64),
            Some(_) => {
                return Err(bad(
                    "DEFAULT",
                    "graceful_shutdown_timeout",
                    cfg.get("DEFAULT", "graceful_shutdown_timeout")
                        .unwrap_or(&Value::NULL),
                    "must be 0 or more seconds",
                ))
            }
        };
        Ok(PollingOptions {
            cfg_file: string(cfg, "polling", "cfg_file")?.unwrap_or(d.cfg_file),
            batch_size,
            threads_to_process_pollsters: threads,
            workers,
            pollster_timeout,
            max_backoff_interval: max_backoff,
            telemetry_secret: string(cfg, "publisher", "telemetry_secret")?
                .unwrap_or(d.telemetry_secret),
            sample_source: string(cfg, "DEFAULT", "sample_source")?.unwrap_or(d.sample_source),
            shutdown_timeout,
        })
    }

    /// The call timeout for a task of `interval`.
    pub fn timeout_for(&self, interval: Duration) -> Duration {
        self.pollster_timeout
            .unwrap_or_else(|| interval.min(AUTO_TIMEOUT_CAP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let o = PollingOptions::from_config(&Config::new()).unwrap();
        assert_eq!(o.batch_size, 50);
        assert_eq!(o.threads_to_process_pollsters, 1);
        assert_eq!(o.telemetry_secret, DEFAULT_TELEMETRY_SECRET);
        assert_eq!(
            o.timeout_for(Duration::from_secs(300)),
            Duration::from_secs(60)
        );
        assert_eq!(
            o.timeout_for(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        let cfg = Config::new()
            .with("polling", "batch_size", "0")
            .with("polling", "pollster_timeout", 2.5)
            .with("publisher", "telemetry_secret", "s3")
            .with("DEFAULT", "sample_source", "elsewhere");
        let o = PollingOptions::from_config(&cfg).unwrap();
        assert_eq!(o.batch_size, 0);
        assert_eq!(
            o.timeout_for(Duration::from_secs(300)),
            Duration::from_millis(2500)
        );
        assert_eq!(o.telemetry_secret, "s3");
        assert_eq!(o.sample_source, "elsewhere");
    }

    #[test]
    fn negative_batch_size_is_rejected() {
        let cfg = Config::new().with("polling", "batch_size", -1);
        let e = PollingOptions::from_config(&cfg).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("option [polling] batch_size = -1: must be 0"),
            "{e}"
        );
        let cfg = Config::new().with("polling", "threads_to_process_pollsters", "many");
        assert!(PollingOptions::from_config(&cfg).is_err());
    }

    #[test]
    fn every_read_option_is_declared() {
        let names: Vec<String> = options()
            .iter()
            .map(|o| format!("[{}] {}", o.section(), o.name()))
            .collect();
        for n in [
            "[polling] cfg_file",
            "[polling] batch_size",
            "[polling] threads_to_process_pollsters",
            "[polling] workers",
            "[polling] pollster_timeout",
            "[polling] max_backoff_interval",
            "[publisher] telemetry_secret",
            "[DEFAULT] sample_source",
            "[DEFAULT] graceful_shutdown_timeout",
        ] {
            assert!(names.contains(&n.to_string()), "{n}");
        }
        assert!(options()
            .iter()
            .any(|o| o.name() == "telemetry_secret" && o.is_secret()));
    }
}
