//! The running agent with real time and the real synthetic plugins: every task starts at
//! once, runs every interval, never overlaps itself (an overrun is skipped), never waits
//! for another interval's slow task; shutdown is bounded, cancels hung calls and closes
//! the publisher. Observed through events and channels with bounded waits (the synthetic
//! pollsters' sleeps are the behaviour under test, not synchronisation).

mod polling_support;

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use longshore_plugin_api::Config;
use longshore_polling::{AgentEvent, Outcome, RunningAgent};
use polling_support::*;

const BOUND: Duration = Duration::from_secs(30);

fn next_event(rx: &Receiver<AgentEvent>) -> AgentEvent {
    rx.recv_timeout(BOUND)
        .expect("an agent event within the bound")
}

fn started(
    cfg: &Config,
    yaml: &str,
    entries: &[(&str, &str)],
) -> (
    RunningAgent,
    Receiver<AgentEvent>,
    std::sync::Arc<RecordingPublisher>,
) {
    let (agent, publisher) = agent(cfg, yaml, entries);
    let events = agent.subscribe();
    let running = agent.start().expect("start");
    (running, events, publisher)
}

#[test]
fn all_tasks_start_at_once_and_then_run_every_interval() {
    // 1 s and 1 hour: both run at start; only the 1 s task runs again.
    let yaml = "sources:
  - name: fast
    interval: 1
    meters: [sch.fast]
  - name: hourly
    interval: 3600
    meters: [sch.hourly]
";
    let (agent, publisher) = agent(
        &Config::new(),
        yaml,
        &[("sch.fast", "counter"), ("sch.hourly", "counter")],
    );
    let batches = publisher.subscribe();
    let t0 = Instant::now();
    let running = agent.start().unwrap();
    let mut fast_at = Vec::new();
    let mut hourly = 0;
    while fast_at.len() < 3 {
        let b = batches.recv_timeout(BOUND).expect("a batch");
        match b.pollster.as_str() {
            "sch.fast" => fast_at.push(t0.elapsed()),
            _ => hourly += 1,
        }
    }
    assert!(hourly <= 1);
    // the first cycles come at once, the following ones about a second apart
    assert!(fast_at[0] < Duration::from_millis(1500), "{fast_at:?}");
    let gap = fast_at[2] - fast_at[1];
    assert!(
        gap > Duration::from_millis(500) && gap < Duration::from_millis(3000),
        "{fast_at:?}"
    );
    let report = running.shutdown(Duration::from_secs(5));
    assert!(report.cycles_finished);
    assert!(report.publisher.is_ok());
    assert!(publisher.is_closed());
    let hourly_total = publisher
        .batches()
        .iter()
        .filter(|b| b.pollster == "sch.hourly")
        .count();
    assert_eq!(hourly_total, 1, "the hourly task ran once, at start");
}

#[test]
fn an_overrunning_task_is_skipped_and_never_delays_another_interval() {
    // The 1 s task takes 2.5 s (slow pollster); the 2 s task is fast.
    // (The default timeout would be the 1 s interval.)
    let cfg =
        Config::new()
            .with("synthetic", "slow_ms", 2500)
            .with("polling", "pollster_timeout", 10);
    let yaml = "sources:
  - name: slowtask
    interval: 1
    meters: [ovr.slow]
  - name: quick
    interval: 2
    meters: [ovr.quick]
";
    let (running, events, _publisher) = started(
        &cfg,
        yaml,
        &[("ovr.slow", "slow"), ("ovr.quick", "counter")],
    );
    let plan = running.plan();
    let slow_task = plan
        .iter()
        .position(|t| t.interval == Duration::from_secs(1))
        .unwrap();
    let mut skipped = 0;
    let mut quick_cycles_during_first_slow = 0;
    let mut slow_finished = 0;
    let mut slow_running = false;
    let deadline = Instant::now() + BOUND;
    while slow_finished < 2 && Instant::now() < deadline {
        match next_event(&events) {
            AgentEvent::CycleStarted { task, .. } if task == slow_task => {
                assert!(!slow_running, "a task never overlaps itself");
                slow_running = true;
            }
            AgentEvent::CycleFinished { task, report } if task == slow_task => {
                slow_running = false;
                slow_finished += 1;
                assert_eq!(report.pollsters[0].outcome, Outcome::Polled);
            }
            AgentEvent::CycleFinished { .. } if slow_finished == 0 => {
                quick_cycles_during_first_slow += 1;
            }
            AgentEvent::CycleSkipped {
                task, running_for, ..
            } => {
                assert_eq!(task, slow_task);
                assert!(running_for >= Duration::from_millis(500));
                skipped += 1;
            }
            _ => {}
        }
    }
    assert_eq!(slow_finished, 2);
    assert!(
        skipped >= 2,
        "the slots during each 2.5 s run were skipped: {skipped}"
    );
    assert!(
        quick_cycles_during_first_slow >= 1,
        "the 2 s task ran while the slow one was busy"
    );
    let warnings = logged(
        log::Level::Warn,
        "Polling task (interval 1 s) is still running",
    );
    // one warning per skipped slot (more slots may have been skipped since)
    assert!(warnings.len() >= skipped, "{warnings:?}");
    running.shutdown(Duration::from_secs(10));
}

#[test]
fn shutdown_waits_for_running_pollsters_within_its_bound() {
    // A pollster taking 300 ms finishes; nothing else starts after the stop.
    let cfg = Config::new().with("synthetic", "slow_ms", 300);
    let yaml = "sources:\n  - name: sd\n    interval: 3600\n    meters: ['sd.*']\n";
    let (running, events, publisher) =
        started(&cfg, yaml, &[("sd.slow", "slow"), ("sd.after", "counter")]);
    // Stop while the slow pollster runs.
    while !matches!(next_event(&events), AgentEvent::PollsterCalled { .. }) {}
    let t = Instant::now();
    let report = running.shutdown(Duration::from_secs(10));
    assert!(report.cycles_finished);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(report.abandoned_calls, 0);
    assert!(publisher.is_closed());
    // The slow pollster finished (its samples are published); the pollster after it
    // was skipped because the agent was stopping.
    let names: Vec<String> = publisher
        .batches()
        .iter()
        .map(|b| b.pollster.clone())
        .collect();
    assert_eq!(names, ["sd.slow"]);
    let finished = events.try_iter().find_map(|e| match e {
        AgentEvent::CycleFinished { report, .. } => Some(report),
        _ => None,
    });
    let finished = finished.expect("the cycle finished");
    assert_eq!(
        finished.pollsters[1].outcome,
        Outcome::Skipped(longshore_polling::SkipReason::ShuttingDown)
    );
}

#[test]
fn shutdown_cancels_calls_that_outlive_the_bound() {
    let cfg = Config::new().with("polling", "pollster_timeout", 60);
    let yaml = "sources:\n  - name: hs\n    interval: 3600\n    meters: ['hs.*']\n";
    let (running, events, publisher) = started(&cfg, yaml, &[("hs.hang", "hang")]);
    // Once announced, the lone pollster's call follows at once, whatever happens next.
    while !matches!(next_event(&events), AgentEvent::PollsterCalled { .. }) {}
    let t = Instant::now();
    let report = running.shutdown(Duration::from_millis(300));
    let took = t.elapsed();
    assert!(!report.cycles_finished, "the hang outlived the bound");
    assert!(took < Duration::from_secs(5), "bounded: {took:?}");
    assert!(report.publisher.is_ok());
    assert!(publisher.is_closed());
    // The aborted cycle still reports, with the hang call interrupted.
    let finished = events
        .recv_timeout(BOUND)
        .expect("the aborted cycle finishes");
    let AgentEvent::CycleFinished { report, .. } = finished else {
        panic!("{finished:?}");
    };
    assert_eq!(
        report.pollsters[0].outcome,
        Outcome::Failed(longshore_polling::Failure::Aborted)
    );
}

#[test]
fn a_call_due_after_the_abort_is_not_made() {
    // The runner is inside a slow discovery when the shutdown bound runs out: the
    // discovery is interrupted, and the pollster, which still has a static resource,
    // must not start a call nobody would cancel (it would run its 20 s timeout).
    let cfg = Config::new()
        .with("polling", "pollster_timeout", 20)
        .with("synthetic", "discovery_delay_ms", 1500)
        .with("synthetic", "slow_ms", 4000);
    let yaml = "sources:
  - name: ab
    interval: 3600
    meters: ['ab.*']
    resources: ['static-1']
    discovery: ['counted']
";
    let (running, events, publisher) = started(&cfg, yaml, &[("ab.slow", "slow")]);
    while !matches!(next_event(&events), AgentEvent::DiscoveryCalled { .. }) {}
    let t = Instant::now();
    let report = running.shutdown(Duration::from_millis(300));
    assert!(!report.cycles_finished, "the discovery outlived the bound");
    let finished = loop {
        if let AgentEvent::CycleFinished { report, .. } = next_event(&events) {
            break report;
        }
    };
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the aborted cycle ends within the grace, not after the pollster's timeout: {:?}",
        t.elapsed()
    );
    let slow = &finished.pollsters[0];
    assert_eq!(
        slow.outcome,
        Outcome::Failed(longshore_polling::Failure::Aborted)
    );
    assert_eq!((slow.samples, slow.publish_errors), (0, 0));
    assert!(publisher.messages().is_empty());
}
