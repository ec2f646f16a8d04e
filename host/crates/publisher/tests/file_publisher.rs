//! The JSON-lines file publisher with real files and a real pipe: lines are `json.dumps`
//! text, `flush` waits for the writer, a full queue drops (counted) instead of blocking,
//! `close` stops it.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use longshore_plugin_api::{Map, Value};
use longshore_publisher::{pyjson, Batch, FileOptions, FilePublisher, PublishError, Publisher};

const T: Duration = Duration::from_secs(10);

fn message(i: i64) -> Map {
    Map::new()
        .with("counter_name", "cpu")
        .with("counter_volume", i)
        .with("monotonic_time", 512.0)
        .with("resource_metadata", Map::new().with("display_name", "vmé"))
}

fn batch(from: i64, n: i64) -> Batch {
    Batch {
        source: "src".into(),
        pollster: "cpu".into(),
        messages: (from..from + n).map(|i| message(i).into()).collect(),
    }
}

#[test]
fn writes_one_python_json_line_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.jsonl");
    let url = format!("file://{}", path.display());
    let p = FilePublisher::from_url(&url).unwrap();
    assert_eq!(p.describe(), url);
    p.publish(batch(0, 3)).unwrap();
    p.publish(batch(3, 2)).unwrap();
    p.flush(T).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, pyjson::map_to_string(&message(i as i64)));
    }
    assert_eq!(
        lines[0],
        r#"{"counter_name": "cpu", "counter_volume": 0, "monotonic_time": 512.0, "resource_metadata": {"display_name": "vm\u00e9"}}"#
    );
    let stats = p.stats();
    assert_eq!((stats.written, stats.dropped, stats.pending), (5, 0, 0));

    p.close(T).unwrap();
    assert!(matches!(
        p.publish(batch(0, 1)),
        Err(PublishError::Closed(_))
    ));
    assert!(matches!(p.flush(T), Err(PublishError::Closed(_))));
    p.close(T).unwrap(); // idempotent
}

#[test]
fn appends_to_an_existing_file_and_close_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a b.jsonl");
    std::fs::write(&path, "existing\n").unwrap();
    let url = format!("file:{}", path.display()).replace(' ', "%20");
    let p = FilePublisher::from_url(&url).unwrap();
    p.publish(batch(0, 2)).unwrap();
    p.close(T).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.starts_with("existing\n"));
}

#[test]
fn unopenable_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/x.jsonl");
    let err = FilePublisher::from_url(&format!("file://{}", path.display())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no/such/dir/x.jsonl"), "{msg}");
    assert!(matches!(err, PublishError::Io { .. }));
}

#[test]
fn full_queue_drops_and_counts_instead_of_blocking() {
    // A real pipe nobody reads: once the kernel buffer (64 KiB) is full the writer thread
    // blocks, the one-batch queue fills, and publish must give up after publish_wait.
    let (mut reader, writer) = std::io::pipe().unwrap();
    let opts = FileOptions {
        queue_batches: 1,
        publish_wait: Duration::from_millis(20),
    };
    let p = FilePublisher::with_writer("pipe", writer, opts).unwrap();
    let big = |i: i64| Batch {
        source: "src".into(),
        pollster: "cpu".into(),
        messages: vec![Map::new()
            .with("pad", "x".repeat(100_000))
            .with("i", i)
            .into()],
    };
    let mut sent = 0;
    while p.stats().dropped == 0 {
        p.publish(big(sent)).unwrap();
        sent += 1;
        assert!(sent < 100, "the queue never filled");
    }
    assert_eq!(p.stats().dropped, 1);
    // flush cannot finish while the pipe is stuck: bounded by its timeout.
    match p.flush(Duration::from_millis(50)) {
        Err(PublishError::Timeout { pending, .. }) => assert!(pending >= 1),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Drain the pipe: everything accepted is then written, nothing dropped is.
    let drain = std::thread::spawn(move || {
        let mut lines = Vec::new();
        BufReader::new(&mut reader)
            .lines()
            .for_each(|l| lines.push(l.unwrap()));
        lines
    });
    p.close(T).unwrap();
    drop(p); // closes the pipe's write end (the writer thread has ended)
    let lines = drain.join().unwrap();
    let stats_written = lines.len() as i64;
    assert_eq!(stats_written, sent - 1);
    for (k, line) in lines.iter().enumerate() {
        assert!(line.ends_with(&format!(r#", "i": {k}}}"#)), "line {k}");
    }
}

#[test]
fn write_errors_are_reported_by_flush() {
    // A pipe whose reader is gone: writes fail with EPIPE (Rust ignores SIGPIPE).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let p = FilePublisher::with_writer("pipe", writer, FileOptions::default()).unwrap();
    p.publish(batch(0, 4)).unwrap();
    let err = p.flush(T).unwrap_err();
    assert!(matches!(err, PublishError::Io { .. }), "{err}");
    assert_eq!(p.stats().dropped, 4);
    // the error was reported once; a later flush with nothing new succeeds
    p.flush(T).unwrap();
    p.close(T).unwrap();
}

#[test]
fn dropping_without_close_still_writes_everything() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let p = FilePublisher::with_writer("pipe", writer, FileOptions::default()).unwrap();
    p.publish(batch(0, 3)).unwrap();
    drop(p);
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap(); // EOF once the writer thread ends
    assert_eq!(text.lines().count(), 3);
    let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        v.as_map().and_then(|m| m.get("counter_volume")),
        Some(&Value::from(0))
    );
}
