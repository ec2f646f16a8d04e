//! Per-sample cost of turning a realistic compute sample into a signed meter message and
//! its Python-identical JSON, against `serde_json::to_string` of the same message
//! measured in the same run.
//!
//! Run: `cargo bench -p longshore-publisher --bench sign` (release profile).
//! Prints the median and minimum over RUNS runs of N samples each, in ns per sample,
//! and the ratio of the medians to the serde_json baseline. The `MessageFactory` rows are
//! the agent's path (typed `MeterMessage`); the dict rows are the `Map`-returning functions.
//! `SIGN_BENCH_PROFILE=1` runs only a message-making loop, for `perf record`.

use std::hint::black_box;
use std::time::Instant;

use hmac::Mac;
use longshore_plugin_api::{Map, Resource, Sample, SampleType};
use longshore_publisher::hmac_group::{HmacKey, LANES};
use longshore_publisher::notification::{
    encode_notification_into, NotificationIds, EVENT_TYPE, PUBLISHER_ID,
};
use longshore_publisher::signature::signing_input;
use longshore_publisher::{
    into_meter_message, meter_message_from_counter, pyjson, MessageDefaults, MessageFactory,
    MeterMessage, Signer, Uuid1Generator,
};

const N: usize = 1000;
const RUNS: usize = 31;
const BATCH: usize = 50;

/// The resource metadata of the capture's instances (tests/fixtures/capture).
fn resource(i: usize) -> Resource {
    let id = format!("451b4cf3-6123-4df7-b656-af72{i:08x}");
    let flavor = Map::new()
        .with("id", "2")
        .with("name", "m1.small")
        .with("vcpus", 1)
        .with("ram", 2048)
        .with("disk", 20)
        .with("ephemeral", 0)
        .with("swap", 0);
    let md = Map::new()
        .with("display_name", format!("kafka-{i}"))
        .with("name", format!("instance-{i:08x}"))
        .with("instance_id", id.as_str())
        .with("instance_type", "m1.small")
        .with(
            "host",
            "53eb93006ac3636d03c847b16c28924d917430fd093c94dabe6b2108",
        )
        .with("instance_host", "peer-compute-0")
        .with("flavor", flavor)
        .with("status", "active")
        .with("state", "running")
        .with("task_state", "")
        .with(
            "image",
            Map::new().with("id", "3c2a1f7e-8d4b-4e6a-9f0c-1b2d3e4f5a6b"),
        )
        .with("image_ref", "3c2a1f7e-8d4b-4e6a-9f0c-1b2d3e4f5a6b")
        .with("image_ref_url", longshore_plugin_api::Value::NULL)
        .with("architecture", "x86_64")
        .with("os_type", "hvm")
        .with("vcpus", 1)
        .with("memory_mb", 2048)
        .with("disk_gb", 20)
        .with("ephemeral_gb", 0)
        .with("root_gb", 20);
    Resource::builder(id.as_str())
        .user_id(Some("9a1de644815ef6d13b8faa1837f8a88b"))
        .project_id(Some("4737819096da1dac72ff5d2a386ecbe0"))
        .metadata(md)
        .build()
}

fn samples(n: usize) -> Vec<Sample> {
    let resources: Vec<Resource> = (0..100).map(resource).collect();
    (0..n)
        .map(|i| {
            Sample::from_resource(
                &resources[i % resources.len()],
                "cpu",
                SampleType::Cumulative,
                "ns",
                (i as u64) * 1_000_000_007,
            )
            .with_metadata("cpu_number", 1)
            .with_monotonic_time(725.042996987 + i as f64 * 0.001)
            .with_timestamp("2026-11-22T02:53:55.788625")
        })
        .collect()
}

struct Stats {
    median: f64,
    min: f64,
}

/// ns/sample of `f` over RUNS runs (after one warm-up run); `setup` builds each run's
/// input untimed.
fn measure<I>(mut setup: impl FnMut() -> I, mut f: impl FnMut(I)) -> Stats {
    let mut per_sample = Vec::with_capacity(RUNS);
    for run in 0..=RUNS {
        let input = setup();
        let t = Instant::now();
        f(input);
        let ns = t.elapsed().as_nanos() as f64 / N as f64;
        if run > 0 {
            per_sample.push(ns);
        }
    }
    per_sample.sort_by(|a, b| a.total_cmp(b));
    Stats {
        median: per_sample[per_sample.len() / 2],
        min: per_sample[0],
    }
}

fn main() {
    let signer = Signer::new("peer-telemetry-secret");
    let ids = Uuid1Generator::new();
    let defaults = MessageDefaults {
        source: "openstack",
        monotonic_time: 1.0,
    };
    let template = samples(N);
    let messages: Vec<Map> = template
        .iter()
        .map(|s| meter_message_from_counter(s, &signer, &ids, &defaults))
        .collect();
    let mut out = Vec::with_capacity(4096);
    pyjson::write_map(&mut out, &messages[0]);
    let one = out.len();
    let mut body = Vec::new();
    let notif_ids = NotificationIds {
        message_id: "ed6b95f7-186b-4353-857a-49e5a3e800f2".into(),
        timestamp: "2026-11-22 02:53:55.790326".into(),
        unique_id: "0b7a5b0e3c4f4a559d8e2f0e6b8a9c11".into(),
    };

    // What the agent does per sample: owned sample -> signed MeterMessage (the run's
    // shared timestamp) -> AMQP body (batches of 50) -> messages dropped.
    let factory = MessageFactory::new("peer-telemetry-secret", "openstack");
    let ts: std::sync::Arc<str> = "2026-11-22T02:53:55.788625".into();
    let pipeline = measure(
        || template.clone(),
        |samples| {
            for batch in factory.batches_at(samples, BATCH, &ts, 1.0) {
                body.clear();
                encode_notification_into(&mut body, &batch, PUBLISHER_ID, EVENT_TYPE, &notif_ids);
                black_box(&body);
            }
        },
    );
    let factory_batch = measure(
        || template.clone(),
        |samples| {
            for batch in factory.batches_at(samples, BATCH, &ts, 1.0) {
                black_box(batch);
            }
        },
    );
    let factory_build = measure(
        || template.clone(),
        |samples| {
            for s in samples {
                black_box(factory.message_at(s, &ts, 1.0));
            }
        },
    );
    // `SIGN_BENCH_PROFILE=1`: only build messages, for a clean `perf record`.
    if std::env::var_os("SIGN_BENCH_PROFILE").is_some() {
        for _ in 0..200 {
            let mut out = Vec::with_capacity(2048);
            for batch in factory.batches_at(template.clone(), BATCH, &ts, 1.0) {
                for m in batch {
                    out.clear();
                    m.write_json(&mut out);
                    black_box(&out);
                }
            }
        }
        return;
    }
    let meter_messages: Vec<MeterMessage> = template
        .iter()
        .map(|s| factory.message_at(s.clone(), &ts, 1.0))
        .collect();
    let meter_json = measure(
        || (),
        |()| {
            for m in &meter_messages {
                out.clear();
                m.write_json(&mut out);
                black_box(&out);
            }
        },
    );
    let meter_drop = measure(|| meter_messages.clone(), |copies| drop(black_box(copies)));
    // The same with the dict messages (the pre-MeterMessage path).
    let pipeline_map = measure(
        || template.clone(),
        |samples| {
            let mut batch = Vec::with_capacity(BATCH);
            for s in samples {
                batch.push(into_meter_message(s, &signer, &ids, &defaults));
                if batch.len() == BATCH {
                    body.clear();
                    encode_notification_into(
                        &mut body,
                        &batch,
                        PUBLISHER_ID,
                        EVENT_TYPE,
                        &notif_ids,
                    );
                    black_box(&body);
                    batch.clear();
                }
            }
        },
    );
    let build_owned = measure(
        || template.clone(),
        |samples| {
            for s in samples {
                black_box(into_meter_message(s, &signer, &ids, &defaults));
            }
        },
    );
    let build_borrowed = measure(
        || (),
        |()| {
            for s in &template {
                black_box(meter_message_from_counter(s, &signer, &ids, &defaults));
            }
        },
    );
    let drop_only = measure(|| messages.clone(), |copies| drop(black_box(copies)));
    let sign_only = measure(
        || (),
        |()| {
            let mut hex = [0u8; 64];
            for m in &messages {
                black_box(signer.sign_into(m, &mut hex));
            }
        },
    );
    let pyjson_only = measure(
        || (),
        |()| {
            for m in &messages {
                out.clear();
                pyjson::write_map(&mut out, m);
                black_box(&out);
            }
        },
    );
    let envelope = measure(
        || (),
        |()| {
            for chunk in messages.chunks(BATCH) {
                body.clear();
                encode_notification_into(&mut body, chunk, PUBLISHER_ID, EVENT_TYPE, &notif_ids);
                black_box(&body);
            }
        },
    );
    // The floor of signing: the HMAC over the same bytes, without walking the message.
    let input = signing_input(&messages[0]);
    let hmac_floor = measure(
        || (),
        |()| {
            for _ in 0..N {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"peer-telemetry-secret")
                    .expect("any key length");
                mac.update(black_box(&input));
                black_box(mac.finalize().into_bytes());
            }
        },
    );
    // The same HMAC, a group of messages at once (what `MessageFactory::extend_at` does).
    let key = HmacKey::new(b"peer-telemetry-secret");
    let mut inputs: [Vec<u8>; LANES] = std::array::from_fn(|_| Vec::with_capacity(2048));
    let hmac_group_floor = measure(
        || (),
        |()| {
            for _ in 0..N / LANES {
                for i in &mut inputs {
                    i.clear();
                    i.extend_from_slice(black_box(&input));
                }
                let mut out = [[0u8; 32]; LANES];
                key.sign(&mut inputs, &mut out);
                black_box(out);
            }
        },
    );
    let serde_baseline = measure(
        || (),
        |()| {
            for m in &messages {
                black_box(serde_json::to_string(m).unwrap_or_default());
            }
        },
    );

    println!(
        "longshore-publisher bench: {N} compute samples per run, {RUNS} runs, \
         {one} bytes of JSON per message; ns per sample"
    );
    println!("  {:<70} {:>7} {:>7} {:>9}", "", "median", "min", "/serde");
    let row = |name: &str, s: &Stats| {
        println!(
            "  {name:<70} {:>7.0} {:>7.0} {:>8.2}x",
            s.median,
            s.min,
            s.median / serde_baseline.median
        )
    };
    row(
        "pipeline: MessageFactory::extend_at + v2 body (batches of 50)",
        &pipeline,
    );
    row(
        "MessageFactory::extend_at (owned samples: uuid1 + sign, 16 at once)",
        &factory_batch,
    );
    row(
        "MessageFactory::message_at (owned sample: uuid1 + sign, one at once)",
        &factory_build,
    );
    row("  of which dropping the MeterMessage", &meter_drop);
    row("MeterMessage::write_json only", &meter_json);
    row(
        "dict path: into_meter_message + sign + v2 body (batches of 50)",
        &pipeline_map,
    );
    row(
        "into_meter_message (owned sample: build + uuid1 + sign)",
        &build_owned,
    );
    row(
        "  of which dropping the message (its ~70 heap strings)",
        &drop_only,
    );
    row(
        "meter_message_from_counter (&sample: clones metadata)",
        &build_borrowed,
    );
    row("Signer::sign_into only", &sign_only);
    row(
        &format!(
            "  of which HMAC-SHA256 of the {}-byte signing input",
            input.len()
        ),
        &hmac_floor,
    );
    row(
        &format!("  the same, {LANES} messages at once (hmac_group, per message)"),
        &hmac_group_floor,
    );
    row("pyjson::write_map only", &pyjson_only);
    row("encode_notification_into only (batches of 50)", &envelope);
    row("baseline: serde_json::to_string(&message)", &serde_baseline);
}
