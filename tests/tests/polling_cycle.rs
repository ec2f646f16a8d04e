//! The per-cycle algorithm (spec §4) with the real synthetic plugin library: discovery
//! once per cycle, the shared pollster cache, resource order, dedup, blacklist,
//! batching, timestamps, signed messages, samples kept before errors, backoff, timeouts.
//! Cycles are driven with `poll_once_at`, so no test waits on the clock.

mod polling_support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use longshore_plugin_api::{Config, ErrorKind, Map, Value};
use longshore_polling::{
    AgentManager, Failure, Outcome, PollReport, PollingOptions, PollsterReport, SkipReason,
};
use longshore_publisher::message::polling_timestamp;
use longshore_publisher::signature::verify_signature;
use longshore_publisher::{FileOptions, FilePublisher};
use polling_support::*;

fn report<'a>(r: &'a PollReport, source: &str, pollster: &str) -> &'a PollsterReport {
    r.pollsters()
        .find(|p| p.source == source && p.pollster == pollster)
        .unwrap_or_else(|| panic!("no report for {source}/{pollster}: {r:#?}"))
}

fn ids(messages: &[Map]) -> Vec<String> {
    messages
        .iter()
        .map(|m| str_field(m, "resource_id").to_string())
        .collect()
}

#[test]
fn a_discovery_runs_once_per_cycle_even_with_parallel_pollsters() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("discovery.log");
    let cfg = Config::new()
        .with("polling", "threads_to_process_pollsters", 0)
        .with("synthetic", "discovery_log", log.to_str().unwrap())
        .with("synthetic", "discovery_delay_ms", 50);
    let yaml = "sources:
  - name: a
    interval: 60
    meters: ['d1.*']
    discovery: [counted]
  - name: b
    interval: 60
    meters: [d1.p4]
    discovery: ['counted']
  - name: other_interval
    interval: 120
    meters: [d1.p1]
    discovery: ['counted://x']
";
    let entries = [
        ("d1.p1", "counter"),
        ("d1.p2", "counter"),
        ("d1.p3", "counter"),
        ("d1.p4", "counter"),
    ];
    let (agent, publisher) = agent(&cfg, yaml, &entries);
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();

    let r = agent.poll_once();
    assert!(r.is_success(), "{r:#?}");
    // Task 60 s: one `counted` call shared by 4 parallel pollsters and two sources;
    // task 120 s: its own `counted://x` call.
    assert_eq!(lines(), "counted \ncounted x\n");
    let msgs = publisher
        .take()
        .into_iter()
        .flat_map(|b| b.messages)
        .map(|m| m.to_map())
        .collect::<Vec<_>>();
    // 4 pollsters x 3 resources in source a; d1.p4 in source b gets nothing new;
    // d1.p1 again in the 120 s task (its own history) with c-x resources.
    assert_eq!(msgs.len(), 4 * 3 + 3);
    assert_eq!(r.cycles[0].discoveries.len(), 1);
    assert_eq!(r.cycles[1].discoveries.len(), 1);
    assert_eq!(
        report(&r, "b", "d1.p4").outcome,
        Outcome::Skipped(SkipReason::NoResources)
    );
    // Every message of one task carries the number of its one discovery call.
    let calls = |msgs: &[Map], slow: bool| -> BTreeSet<i64> {
        msgs.iter()
            .filter(|m| str_field(m, "resource_id").starts_with("x-") == slow)
            .map(|m| {
                metadata(m, "discovery_call")
                    .and_then(Value::as_i64)
                    .unwrap()
            })
            .collect()
    };
    let (fast1, slow1) = (calls(&msgs, false), calls(&msgs, true));
    assert_eq!((fast1.len(), slow1.len()), (1, 1), "{fast1:?} {slow1:?}");
    assert_ne!(fast1, slow1);

    let r = agent.poll_once();
    assert!(r.is_success());
    assert_eq!(lines(), "counted \ncounted x\ncounted \ncounted x\n");
    let msgs = publisher.messages();
    let (fast2, slow2) = (calls(&msgs, false), calls(&msgs, true));
    assert_eq!((fast2.len(), slow2.len()), (1, 1));
    let all: BTreeSet<i64> = [&fast1, &slow1, &fast2, &slow2]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    assert_eq!(all, (1..=4).collect(), "4 calls in 2 cycles of 2 tasks");
}

#[test]
fn pollsters_share_one_cached_inspection_per_resource_and_cycle() {
    for threads in [1, 0] {
        let cfg = Config::new()
            .with("polling", "threads_to_process_pollsters", threads)
            .with("synthetic", "resources", 5)
            .with("synthetic", "inspect_delay_ms", 30);
        let yaml = "sources:\n  - name: s\n    interval: 60\n    meters: ['inspect.*']\n";
        let (agent, publisher) = agent(
            &cfg,
            yaml,
            &[("inspect.a", "inspect.a"), ("inspect.b", "inspect.b")],
        );
        let mut previous = BTreeSet::new();
        for _cycle in 0..2 {
            assert!(agent.poll_once().is_success());
            let msgs = publisher
                .take()
                .into_iter()
                .flat_map(|b| b.messages)
                .map(|m| m.to_map())
                .collect::<Vec<_>>();
            assert_eq!(msgs.len(), 10);
            let mut by_resource: HashMap<String, BTreeSet<i64>> = HashMap::new();
            for m in &msgs {
                let n = metadata(m, "inspection").and_then(Value::as_i64).unwrap();
                by_resource
                    .entry(str_field(m, "resource_id").to_string())
                    .or_default()
                    .insert(n);
            }
            assert_eq!(by_resource.len(), 5);
            // a and b saw the same computation for each resource
            assert!(
                by_resource.values().all(|s| s.len() == 1),
                "{by_resource:?}"
            );
            let numbers: BTreeSet<i64> = by_resource.values().flatten().copied().collect();
            assert_eq!(numbers.len(), 5, "one computation per resource");
            // the cache lives one cycle
            assert!(numbers.is_disjoint(&previous));
            previous = numbers;
        }
    }
}

#[test]
fn static_resources_then_discovery_then_default_discovery() {
    let cfg = Config::new();
    let yaml = "sources:
  - name: both
    interval: 60
    meters: [ord.both]
    resources: [s-a, s-b]
    discovery: ['fixed://d']
  - name: default
    interval: 60
    meters: [ord.default]
  - name: failed_discovery
    interval: 60
    meters: [ord.fallback]
    discovery: [failing]
  - name: unknown_discovery
    interval: 60
    meters: [ord.unknown]
    resources: [only-static]
    discovery: [nosuch]
";
    let entries = [
        ("ord.both", "counter"),
        ("ord.default", "counter"),
        ("ord.fallback", "counter"),
        ("ord.unknown", "counter"),
    ];
    let (agent, publisher) = agent(&cfg, yaml, &entries);
    let r = agent.poll_once();
    let by_pollster = |name: &str| -> Vec<Map> {
        publisher
            .batches()
            .into_iter()
            .filter(|b| b.pollster == name)
            .flat_map(|b| b.messages)
            .map(|m| m.to_map())
            .collect()
    };
    let both = by_pollster("ord.both");
    assert_eq!(ids(&both), ["s-a", "s-b", "d-0", "d-1", "d-2"]);
    let volumes: Vec<i64> = both
        .iter()
        .map(|m| m.get("counter_volume").and_then(Value::as_i64).unwrap())
        .collect();
    assert_eq!(volumes, [0, 1, 2, 3, 4], "one call, in this order");
    assert_eq!(
        ids(&by_pollster("ord.default")),
        ["res-0", "res-1", "res-2"]
    );
    // An empty candidate list (failed discovery) falls back to the default discovery.
    assert_eq!(
        ids(&by_pollster("ord.fallback")),
        ["res-0", "res-1", "res-2"]
    );
    assert_eq!(ids(&by_pollster("ord.unknown")), ["only-static"]);
    // Both discovery failures are reported: `poll --once` would exit non-zero.
    let failed: Vec<&str> = r.failed_discoveries().map(|d| d.url.as_str()).collect();
    assert_eq!(failed, ["failing", "nosuch"]);
    assert!(!r.is_success());
    assert!(r.failed_pollsters().next().is_none());
    assert_eq!(
        logged(log::Level::Warn, "Unknown discovery extension: nosuch").len(),
        1
    );
}

#[test]
fn resources_are_deduplicated_per_pollster_name_within_a_task() {
    let cfg = Config::new();
    let yaml = "sources:
  - name: first
    interval: 60
    meters: [dedup.c]
    resources: [x, y]
  - name: second
    interval: 60
    meters: [dedup.c]
    resources: [y, z, z]
  - name: slower
    interval: 600
    meters: [dedup.c]
    resources: [x, y, x]
";
    let (agent, publisher) = agent(&cfg, yaml, &[("dedup.c", "counter")]);
    agent.poll_once();
    let batches = publisher.batches();
    let of = |source: &str| -> Vec<String> {
        ids(&batches
            .iter()
            .filter(|b| b.source == source)
            .flat_map(|b| b.messages.iter().map(|m| m.to_map()))
            .collect::<Vec<_>>())
    };
    assert_eq!(of("first"), ["x", "y"]);
    assert_eq!(of("second"), ["z"], "y was polled by `first`, z only once");
    assert_eq!(
        of("slower"),
        ["x", "y"],
        "another interval is another task; a run alone in its task still dedups"
    );
    assert_eq!(
        agent
            .plan()
            .iter()
            .map(|t| t.interval.as_secs())
            .collect::<Vec<_>>(),
        [60, 600]
    );
}

#[test]
fn permanently_failing_resources_are_blacklisted_per_source_and_pollster() {
    let cfg = Config::new();
    let yaml = "sources:
  - name: bl_src
    interval: 60
    meters: [bl.perm]
    discovery: ['fixed://ok', 'fixed://bad']
  - name: bl_other
    interval: 120
    meters: [bl.perm]
    resources: [bad-0]
";
    let (agent, publisher) = agent(&cfg, yaml, &[("bl.perm", "permanent")]);
    let r = agent.poll_once();
    let first = report(&r, "bl_src", "bl.perm");
    assert_eq!(first.resources, 6);
    assert_eq!(
        first.samples, 3,
        "the good resources' samples are published"
    );
    assert!(matches!(
        &first.outcome,
        Outcome::Failed(Failure::Error {
            kind: ErrorKind::Permanent,
            ..
        })
    ));
    assert_eq!(
        ids(&publisher
            .take()
            .into_iter()
            .flat_map(|b| b.messages)
            .map(|m| m.to_map())
            .filter(|m| str_field(m, "source") == "openstack")
            .collect::<Vec<_>>())
        .len(),
        3
    );
    let errors = logged(
        log::Level::Error,
        "Prevent pollster bl.perm from polling [bad-0, bad-1, bad-2] on source bl_src anymore!",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    // The other source blacklisted bad-0 for itself.
    assert_eq!(
        logged(
            log::Level::Error,
            "Prevent pollster bl.perm from polling [bad-0] on source bl_other"
        )
        .len(),
        1
    );

    for _ in 0..2 {
        let r = agent.poll_once();
        let again = report(&r, "bl_src", "bl.perm");
        assert_eq!(again.resources, 3);
        assert_eq!(
            again.outcome,
            Outcome::Polled,
            "a permanent error does not back off"
        );
        assert_eq!(
            report(&r, "bl_other", "bl.perm").outcome,
            Outcome::Skipped(SkipReason::NoResources)
        );
    }
    assert_eq!(
        logged(log::Level::Error, "Prevent pollster bl.perm").len(),
        2,
        "logged once"
    );
}

#[test]
fn batches_hold_at_most_batch_size_messages_of_one_pollster() {
    let yaml = "sources:\n  - name: bs\n    interval: 60\n    meters: ['*']\n";
    let entries = [("batch.a", "counter"), ("batch.b", "counter")];
    for (batch_size, want) in [
        (Some(3), vec![3, 3, 1]),
        (Some(0), vec![1; 7]),
        (Some(1), vec![1; 7]),
        (None, vec![7]),
        (Some(7), vec![7]),
    ] {
        let mut cfg = Config::new().with("synthetic", "resources", 7);
        if let Some(b) = batch_size {
            cfg.set("polling", "batch_size", b);
        }
        let (agent, publisher) = agent(&cfg, yaml, &entries);
        let r = agent.poll_once();
        assert!(r.is_success());
        let batches = publisher.batches();
        for p in ["batch.a", "batch.b"] {
            let sizes: Vec<usize> = batches
                .iter()
                .filter(|b| b.pollster == p)
                .map(|b| b.messages.len())
                .collect();
            assert_eq!(sizes, want, "batch_size {batch_size:?}");
            assert_eq!(report(&r, "bs", p).batches, want.len());
        }
        for b in &batches {
            assert!(b
                .messages
                .iter()
                .all(|m| str_field(&m.to_map(), "counter_name") == "test.counter"));
            assert_eq!(b.source, "bs");
        }
    }
    let bad = Config::new().with("polling", "batch_size", -5);
    assert!(PollingOptions::from_config(&bad)
        .unwrap_err()
        .to_string()
        .contains("[polling] batch_size = -5"));
}

fn to_micros(ts: &str) -> String {
    // "…:05" (no fraction when microseconds are 0) compares as "…:05.000000".
    if ts.len() == 19 {
        format!("{ts}.000000")
    } else {
        ts.to_string()
    }
}

#[test]
fn one_timestamp_per_pollster_run_taken_before_the_call_and_signed_messages() {
    let cfg = Config::new()
        .with("synthetic", "resources", 5)
        .with("publisher", "telemetry_secret", "s3cr3t")
        .with("DEFAULT", "sample_source", "my-cloud");
    let yaml = "sources:\n  - name: ts\n    interval: 60\n    meters: ['stamp.*']\n";
    let (agent, publisher) = agent(&cfg, yaml, &[("stamp.1", "stamp"), ("stamp.2", "stamp")]);
    assert!(agent.poll_once().is_success());
    let mut run_stamps = Vec::new();
    for p in ["stamp.1", "stamp.2"] {
        let msgs: Vec<Map> = publisher
            .batches()
            .into_iter()
            .filter(|b| b.pollster == p)
            .flat_map(|b| b.messages)
            .map(|m| m.to_map())
            .collect();
        assert_eq!(msgs.len(), 5);
        let stamps: BTreeSet<&str> = msgs.iter().map(|m| str_field(m, "timestamp")).collect();
        assert_eq!(stamps.len(), 1, "one timestamp for the run: {stamps:?}");
        let ts = to_micros(stamps.iter().next().unwrap());
        assert!(
            !ts.ends_with('Z') && !ts.contains('+'),
            "naive isoformat: {ts}"
        );
        let called_at = metadata(&msgs[0], "called_at_us")
            .and_then(Value::as_i64)
            .unwrap();
        let called = to_micros(&polling_timestamp(
            UNIX_EPOCH + Duration::from_micros(called_at as u64),
        ));
        assert!(
            ts <= called,
            "timestamp {ts} taken before the call at {called}"
        );
        run_stamps.push(ts);
        for m in &msgs {
            assert!(verify_signature(m, "s3cr3t"), "{m:?}");
            assert!(!verify_signature(m, "other"));
            assert_eq!(str_field(m, "source"), "my-cloud");
            assert_eq!(m.get("monotonic_time").map(Value::kind_name), Some("float"));
            assert_eq!(str_field(m, "message_id").len(), 36);
        }
    }
    assert!(
        run_stamps[0] < run_stamps[1],
        "each run has its own timestamp"
    );
}

#[test]
fn samples_produced_before_an_error_or_a_panic_are_published() {
    let cfg = Config::new().with("synthetic", "resources", 5);
    // `panic` has no default discovery.
    let yaml = "sources:\n  - name: keep\n    interval: 60\n    meters: ['keep.*']\n    discovery: [fixed]\n";
    let (agent, publisher) = agent(
        &cfg,
        yaml,
        &[("keep.partial", "partial"), ("keep.panic", "panic")],
    );
    let r = agent.poll_once();
    let partial = report(&r, "keep", "keep.partial");
    assert_eq!(partial.samples, 3);
    assert!(matches!(
        &partial.outcome,
        Outcome::Failed(Failure::Error { kind: ErrorKind::Transient, message }) if message.contains("failed after 3 of 5")
    ));
    let panicked = report(&r, "keep", "keep.panic");
    assert_eq!(panicked.samples, 1);
    assert!(matches!(
        &panicked.outcome,
        Outcome::Failed(Failure::Error { kind: ErrorKind::Panicked, message }) if message.contains("always panics")
    ));
    let counts = publisher.count_by_meter();
    assert_eq!((counts["test.partial"], counts["test.panic"]), (3, 1));
    assert_eq!(r.failed_pollsters().count(), 2);
    assert!(!r.is_success());
}

fn outcome_at(agent: &AgentManager, t0: Instant, secs: u64, pollster: &str) -> Outcome {
    let r = agent.poll_once_at(t0 + Duration::from_secs(secs));
    let outcome = r
        .pollsters()
        .find(|p| p.pollster == pollster)
        .map(|p| p.outcome.clone());
    outcome.unwrap()
}

#[test]
fn a_failing_pollster_backs_off_doubling_its_interval_and_resets_on_success() {
    let t0 = Instant::now();
    let yaml = "sources:\n  - name: bo\n    interval: 10\n    meters: ['bo.*']\n";
    // flaky: fails twice, then works.
    let cfg = Config::new().with("synthetic", "flaky_failures", 2);
    let (agent, _p) = polling_support::agent(&cfg, yaml, &[("bo.flaky", "flaky")]);
    let failed = |o: &Outcome| {
        matches!(
            o,
            Outcome::Failed(Failure::Error {
                kind: ErrorKind::Transient,
                ..
            })
        )
    };
    let backed_off = |o: &Outcome| matches!(o, Outcome::Skipped(SkipReason::BackedOff { .. }));
    let timeline: Vec<(u64, Outcome)> = [0, 10, 20, 30, 40, 50, 60, 70]
        .iter()
        .map(|&s| (s, outcome_at(&agent, t0, s, "bo.flaky")))
        .collect();
    assert!(failed(&timeline[0].1), "{timeline:?}"); // failure 1: next at 20
    assert!(backed_off(&timeline[1].1), "{timeline:?}");
    assert!(failed(&timeline[2].1), "{timeline:?}"); // failure 2: next at 60
    for i in 3..=5 {
        assert!(backed_off(&timeline[i].1), "{timeline:?}");
    }
    assert_eq!(timeline[6].1, Outcome::Polled, "{timeline:?}");
    assert_eq!(timeline[7].1, Outcome::Polled, "reset after a success");
    assert_eq!(
        timeline[4].1,
        Outcome::Skipped(SkipReason::BackedOff {
            failures: 2,
            for_secs: 20
        })
    );
    assert_eq!(
        logged(
            log::Level::Warn,
            "Pollster bo.flaky on source bo failed 2 time(s) in a row: suspending it for 40 s"
        )
        .len(),
        1
    );

    // The cap: an always-failing pollster with max_backoff_interval 30.
    let cfg = Config::new().with("polling", "max_backoff_interval", 30);
    let (agent, _p) = polling_support::agent(&cfg, yaml, &[("bo.fail", "fail")]);
    let ran: Vec<u64> = (0..=9)
        .map(|i| i * 10)
        .filter(|&s| !matches!(outcome_at(&agent, t0, s, "bo.fail"), Outcome::Skipped(_)))
        .collect();
    assert_eq!(ran, [0, 20, 50, 80], "20 s, then capped at 30 s");

    // A panic is a wholesale failure even with samples.
    let yaml =
        "sources:\n  - name: bo\n    interval: 10\n    meters: ['bo.*']\n    discovery: [fixed]\n";
    let (agent, _p) = polling_support::agent(&Config::new(), yaml, &[("bo.panic", "panic")]);
    assert!(matches!(
        outcome_at(&agent, t0, 0, "bo.panic"),
        Outcome::Failed(_)
    ));
    assert!(backed_off(&outcome_at(&agent, t0, 10, "bo.panic")));
}

#[test]
fn a_hung_pollster_times_out_and_its_task_moves_on() {
    let cfg = Config::new().with("polling", "pollster_timeout", 0.2);
    let yaml = "sources:\n  - name: to\n    interval: 60\n    meters: ['to.*']\n";
    let (agent, publisher) = agent(&cfg, yaml, &[("to.hang", "hang"), ("to.after", "counter")]);
    let start = Instant::now();
    let r = agent.poll_once();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        report(&r, "to", "to.hang").outcome,
        Outcome::Failed(Failure::TimedOut(Duration::from_millis(200)))
    );
    assert_eq!(report(&r, "to", "to.after").samples, 3, "the task moved on");
    assert_eq!(publisher.messages().len(), 3);
    assert_eq!(
        logged(
            log::Level::Error,
            "Pollster to.hang on source to gave no answer within 0.200 s"
        )
        .len(),
        1
    );
}

#[test]
fn a_hung_pollster_among_parallel_ones_is_abandoned_and_the_rest_are_polled() {
    // Two runners share the source; the one stuck in to.hang is abandoned at the
    // timeout and another runner takes over whatever the first had not started.
    let cfg = Config::new().with("polling", "pollster_timeout", 0.3).with(
        "polling",
        "threads_to_process_pollsters",
        2,
    );
    let yaml = "sources:\n  - name: par\n    interval: 60\n    meters: ['par.*']\n";
    let (agent, publisher) = agent(
        &cfg,
        yaml,
        &[
            ("par.hang", "hang"),
            ("par.a", "counter"),
            ("par.b", "counter"),
            ("par.c", "counter"),
        ],
    );
    let r = agent.poll_once();
    let outcomes: Vec<(String, Outcome)> = r.cycles[0]
        .pollsters
        .iter()
        .map(|p| (p.pollster.clone(), p.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "par.hang".to_string(),
                Outcome::Failed(Failure::TimedOut(Duration::from_millis(300)))
            ),
            ("par.a".to_string(), Outcome::Polled),
            ("par.b".to_string(), Outcome::Polled),
            ("par.c".to_string(), Outcome::Polled),
        ],
        "reports in polling order, each pollster exactly once"
    );
    assert_eq!(publisher.messages().len(), 9);
}

#[test]
fn a_pollster_that_ignores_cancellation_is_not_called_again_while_stuck() {
    let cfg = Config::new().with("polling", "pollster_timeout", 0.1).with(
        "synthetic",
        "stubborn_ms",
        3000,
    );
    let yaml = "sources:\n  - name: st\n    interval: 10\n    meters: ['st.*']\n";
    let (agent, _p) = polling_support::agent(
        &cfg,
        yaml,
        &[("st.stuck", "stubborn"), ("st.ok", "counter")],
    );
    let t0 = Instant::now();
    let r = agent.poll_once_at(t0);
    assert!(matches!(
        report(&r, "st", "st.stuck").outcome,
        Outcome::Failed(Failure::TimedOut(_))
    ));
    // Backoff: 20 s later, still stuck in the plugin: not called, no thread piles up.
    let r = agent.poll_once_at(t0 + Duration::from_secs(20));
    assert_eq!(
        report(&r, "st", "st.stuck").outcome,
        Outcome::Failed(Failure::StillRunning)
    );
    // The pool keeps its capacity: the other pollster is polled every time.
    assert_eq!(report(&r, "st", "st.ok").outcome, Outcome::Polled);
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "the stuck call never blocked a cycle"
    );
}

#[test]
fn end_to_end_with_the_file_publisher_and_compute_like_samples() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("samples.jsonl");
    let cfg = Config::new()
        .with("synthetic", "instances", 20)
        .with("synthetic", "bench_samples_per_resource", 2)
        .with("polling", "batch_size", 7);
    let yaml = "sources:\n  - name: e2e\n    interval: 300\n    meters: ['*']\n";
    let publisher = Arc::new(
        FilePublisher::from_url_with(out.to_str().unwrap(), FileOptions::default()).unwrap(),
    );
    let agent = AgentManager::new(
        PollingOptions::from_config(&cfg).unwrap(),
        &definition(yaml),
        pollsters(&cfg, &[("bench.x", "bench")]),
        discoveries(&cfg, ALL_DISCOVERIES),
        publisher.clone(),
    );
    let r = agent.poll_once();
    assert!(r.is_success(), "{r:#?}");
    assert_eq!(r.samples(), 40);
    // The discovery builds new resources every cycle; their metadata's renderings go
    // with them (longshore-publisher's metadata unit tests check the freeing).
    let r = agent.poll_once();
    assert!(r.is_success(), "{r:#?}");
    agent.close(Duration::from_secs(10)).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 80);
    for line in lines {
        let m: Map = serde_json::from_str(line).unwrap();
        assert!(
            verify_signature(&m, "change this for valid signing"),
            "{line}"
        );
        let keys: Vec<&str> = m.keys().collect();
        assert_eq!(keys.first(), Some(&"source"));
        assert_eq!(keys.last(), Some(&"message_signature"));
        assert_eq!(
            metadata(&m, "flavor").and_then(Value::as_map).map(Map::len),
            Some(7)
        );
        match str_field(&m, "counter_name") {
            "bench.m0" => assert!(line.contains("\"counter_volume\": 1795316035")),
            "bench.m1" => assert!(line.contains(".0, \"user_id\"")),
            other => panic!("{other}"),
        }
    }
}

/// A per-resource pollster over 301 resources, batch size 50: the published batches
/// and their order must be what one call gives, however the host slices the calls.
#[test]
fn a_per_resource_pollster_is_called_on_slices_and_publishes_what_one_call_would() {
    let yaml = "sources:\n  - name: sl\n    interval: 60\n    meters: [sl.count]\n";
    let run = |per_resource: bool| {
        let cfg = Config::new().with("synthetic", "resources", 301).with(
            "synthetic",
            "per_resource",
            per_resource,
        );
        let (agent, publisher) = agent(&cfg, yaml, &[("sl.count", "counter")]);
        let r = agent.poll_once();
        assert!(r.is_success(), "{r:#?}");
        let rep = report(&r, "sl", "sl.count");
        assert_eq!((rep.resources, rep.samples, rep.batches), (301, 301, 7));
        let batches = publisher.batches();
        let sizes: Vec<usize> = batches.iter().map(|b| b.messages.len()).collect();
        let samples: Vec<(String, i64)> = batches
            .iter()
            .flat_map(|b| b.messages.iter().map(|m| m.to_map()))
            .map(|m| {
                let volume = m.get("counter_volume").and_then(Value::as_i64);
                (str_field(&m, "resource_id").to_string(), volume.unwrap())
            })
            .collect();
        (sizes, samples)
    };
    let (one_sizes, one_ids) = run(false);
    let (sliced_sizes, sliced_ids) = run(true);
    assert_eq!(one_sizes, [50, 50, 50, 50, 50, 50, 1]);
    assert_eq!(sliced_sizes, one_sizes, "batches span the slices");
    assert_eq!(sliced_ids, one_ids, "same samples, same order");
    assert_eq!(one_ids[300], ("res-300".to_string(), 300));
    assert_eq!(logged(log::Level::Info, "polling 301 resources").len(), 1);
    // 301 = 150 + 150 + 1 (longshore-polling's slice: whole batches near 128).
    assert_eq!(logged(log::Level::Info, "polling 150 resources").len(), 2);
    assert_eq!(logged(log::Level::Info, "polling 1 resources").len(), 1);
}

#[test]
fn a_sliced_run_blacklists_permanent_failures_per_slice_and_stops_at_a_transient_one() {
    let cfg =
        Config::new()
            .with("synthetic", "resources", 200)
            .with("synthetic", "per_resource", true);
    let yaml = "sources:
  - name: slp
    interval: 60
    meters: [slp.perm]
    discovery: ['fixed://ok', 'fixed://bad']
  - name: slt
    interval: 60
    meters: [slt.partial]
    discovery: ['fixed://tr']
";
    let (agent, publisher) = agent(
        &cfg,
        yaml,
        &[("slp.perm", "permanent"), ("slt.partial", "partial")],
    );
    let r = agent.poll_once();
    // 400 resources in slices of 150: the bad ones fail in two of them; every good
    // one is still polled and every bad one blacklisted.
    let perm = report(&r, "slp", "slp.perm");
    assert_eq!((perm.resources, perm.samples), (400, 200));
    assert!(matches!(
        &perm.outcome,
        Outcome::Failed(Failure::Error {
            kind: ErrorKind::Permanent,
            ..
        })
    ));
    let blacklisted: usize = logged(
        log::Level::Error,
        "Prevent pollster slp.perm from polling [",
    )
    .iter()
    .map(|m| m.matches("bad-").count())
    .sum();
    assert_eq!(blacklisted, 200);
    // A transient error ends the run as one call's would: the first slice's half.
    let partial = report(&r, "slt", "slt.partial");
    assert_eq!(partial.samples, 75);
    assert!(matches!(
        &partial.outcome,
        Outcome::Failed(Failure::Error { kind: ErrorKind::Transient, message })
            if message.contains("failed after 75 of 150")
    ));
    let counts = publisher.count_by_meter();
    assert_eq!(
        (counts["test.permanent"], counts["test.partial"]),
        (200, 75)
    );

    let r = agent.poll_once();
    let again = report(&r, "slp", "slp.perm");
    assert_eq!((again.resources, again.samples), (200, 200));
    assert_eq!(again.outcome, Outcome::Polled);
}

/// Consecutive per-resource pollsters of a source are polled slice by slice, each slice
/// by all of them in turn (their resources' data is then read from memory once, not
/// once per pollster); when one of them hangs in a later slice, the others are handed to
/// another runner and finish where they left off, each sample published exactly once.
#[test]
fn per_resource_pollsters_interleave_their_slices_and_survive_a_hang_in_their_group() {
    let cfg = Config::new()
        .with("polling", "pollster_timeout", 0.3)
        .with("synthetic", "resources", 300)
        .with("synthetic", "per_resource", true)
        .with("synthetic", "hang_from", 200);
    let yaml = "sources:\n  - name: grp\n    interval: 60\n    meters: ['grp.*']\n";
    let (agent, publisher) = agent(
        &cfg,
        yaml,
        &[
            ("grp.a", "counter"),
            ("grp.hang", "hang_from"),
            ("grp.b", "counter"),
        ],
    );
    let start = Instant::now();
    let r = agent.poll_once();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(
        report(&r, "grp", "grp.hang").outcome,
        Outcome::Failed(Failure::TimedOut(Duration::from_millis(300)))
    );
    for name in ["grp.a", "grp.b"] {
        let rep = report(&r, "grp", name);
        assert_eq!(rep.outcome, Outcome::Polled, "{name}");
        assert_eq!((rep.resources, rep.samples, rep.batches), (300, 300, 6));
    }
    let batches = publisher.batches();
    let of = |name: &str| -> Vec<usize> {
        (0..batches.len())
            .filter(|&i| batches[i].pollster == name)
            .collect()
    };
    // Interleaved: grp.b's first slice is published before grp.a's last.
    assert!(
        of("grp.b")[0] < *of("grp.a").last().unwrap(),
        "{:?}",
        of("grp.a")
    );
    // Every resource exactly once per pollster, in order, in full batches but the last.
    for name in ["grp.a", "grp.b"] {
        let ids: Vec<String> = of(name)
            .iter()
            .flat_map(|&i| batches[i].messages.iter().map(|m| m.to_map()))
            .map(|m| str_field(&m, "resource_id").to_string())
            .collect();
        let expected: Vec<String> = (0..300).map(|i| format!("res-{i}")).collect();
        assert_eq!(ids, expected, "{name}");
        let sizes: Vec<usize> = of(name)
            .iter()
            .map(|&i| batches[i].messages.len())
            .collect();
        assert_eq!(sizes, [50; 6], "{name}");
    }
    // The hung run's first slice (150 samples, three batches) was published, and its
    // report says so.
    assert_eq!(publisher.count_by_meter()["test.hang_from"], 150);
    let hung = report(&r, "grp", "grp.hang");
    assert_eq!((hung.samples, hung.batches), (150, 3));
}

/// Several hangs in several groups, with one to three runners: every run is reported
/// once, and every sample of the healthy ones is published exactly once, in order.
#[test]
fn hangs_in_interleaved_groups_lose_and_repeat_nothing_with_any_number_of_runners() {
    for threads in [1, 2, 3] {
        let cfg = Config::new()
            .with("polling", "pollster_timeout", 0.3)
            .with("polling", "threads_to_process_pollsters", threads)
            .with("synthetic", "resources", 400)
            .with("synthetic", "per_resource", true)
            .with("synthetic", "hang_from", 200);
        let yaml = "sources:\n  - name: g\n    interval: 60\n    meters: ['g.*']\n";
        let names: Vec<String> = (0..12).map(|i| format!("g.p{i:02}")).collect();
        let entries: Vec<(&str, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), if i % 4 == 1 { "hang_from" } else { "counter" }))
            .collect();
        let (agent, publisher) = agent(&cfg, yaml, &entries);
        let r = agent.poll_once();
        assert_eq!(r.pollsters().count(), 12);
        let batches = publisher.batches();
        let expected: Vec<String> = (0..400).map(|i| format!("res-{i}")).collect();
        for (name, kind) in &entries {
            let rep = report(&r, "g", name);
            let ids: Vec<String> = batches
                .iter()
                .filter(|b| b.pollster == *name)
                .flat_map(|b| b.messages.iter().map(|m| m.to_map()))
                .map(|m| str_field(&m, "resource_id").to_string())
                .collect();
            if *kind == "hang_from" {
                assert_eq!(
                    rep.outcome,
                    Outcome::Failed(Failure::TimedOut(Duration::from_millis(300))),
                    "{threads} {name}"
                );
                assert_eq!(ids, expected[..150], "{threads} {name}");
            } else {
                assert_eq!(rep.outcome, Outcome::Polled, "{threads} {name}");
                assert_eq!(ids, expected, "{threads} {name}");
                assert_eq!(rep.samples, 400);
            }
        }
    }
}

/// Pollsters of one source whose discovery finds nothing fall back each to its own
/// default discovery (the candidates a cycle shares are per default discovery).
#[test]
fn an_empty_source_discovery_falls_back_to_each_pollsters_own_default() {
    for order in [
        [("fb.a", "counter"), ("fb.b", "bench")],
        [("fb.a", "bench"), ("fb.b", "counter")],
    ] {
        let cfg = Config::new()
            .with("synthetic", "resources", 3)
            .with("synthetic", "instances", 7);
        let yaml = "sources:\n  - name: fb\n    interval: 60\n    meters: ['fb.*']\n    \
                    discovery: ['failing']\n";
        let (agent, _publisher) = agent(&cfg, yaml, &order);
        let r = agent.poll_once();
        for (name, kind) in order {
            let want = if kind == "counter" { 3 } else { 7 };
            assert_eq!(report(&r, "fb", name).resources, want, "{order:?}");
        }
    }
}
