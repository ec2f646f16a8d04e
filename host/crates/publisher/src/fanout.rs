//! Several publishers behind one: every batch goes to each of them (Ceilometer's
//! pipeline sends to every configured publisher). One publisher refusing a batch does
//! not keep it from the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Batch, PublishError, Publisher};

/// Sends every batch to each publisher in turn.
pub struct FanOut {
    publishers: Vec<Arc<dyn Publisher>>,
}

impl FanOut {
    pub fn new(publishers: Vec<Arc<dyn Publisher>>) -> FanOut {
        FanOut { publishers }
    }

    pub fn publishers(&self) -> &[Arc<dyn Publisher>] {
        &self.publishers
    }

    /// Run `f` on every publisher, returning the first error after trying all.
    fn each(
        &self,
        mut f: impl FnMut(&dyn Publisher) -> Result<(), PublishError>,
    ) -> Result<(), PublishError> {
        let mut first = None;
        for p in &self.publishers {
            if let Err(e) = f(p.as_ref()) {
                log::warn!("{}: {e}", p.describe());
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Publisher for FanOut {
    fn describe(&self) -> String {
        self.publishers
            .iter()
            .map(|p| p.describe())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    fn publish(&self, batch: Batch) -> Result<(), PublishError> {
        let Some((last, rest)) = self.publishers.split_last() else {
            return Ok(());
        };
        let mut first = None;
        for p in rest {
            if let Err(e) = p.publish(batch.clone()) {
                first.get_or_insert(e);
            }
        }
        if let Err(e) = last.publish(batch) {
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }

    fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        // One deadline for all, so N publishers do not wait N times the timeout.
        let deadline = Instant::now() + timeout;
        self.each(|p| p.flush(deadline.saturating_duration_since(Instant::now())))
    }

    fn close(&self, timeout: Duration) -> Result<(), PublishError> {
        let deadline = Instant::now() + timeout;
        self.each(|p| p.close(deadline.saturating_duration_since(Instant::now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        got: Mutex<Vec<String>>,
        refuse: bool,
    }

    impl Publisher for Recorder {
        fn describe(&self) -> String {
            "recorder".into()
        }
        fn publish(&self, batch: Batch) -> Result<(), PublishError> {
            if self.refuse {
                return Err(PublishError::Closed("recorder".into()));
            }
            self.got.lock().unwrap().push(batch.pollster);
            Ok(())
        }
        fn flush(&self, _: Duration) -> Result<(), PublishError> {
            Ok(())
        }
        fn close(&self, _: Duration) -> Result<(), PublishError> {
            Ok(())
        }
    }

    #[test]
    fn every_publisher_gets_every_batch_even_when_one_refuses() {
        let a = Arc::new(Recorder::default());
        let bad = Arc::new(Recorder {
            refuse: true,
            ..Default::default()
        });
        let b = Arc::new(Recorder::default());
        let fan = FanOut::new(vec![a.clone(), bad, b.clone()]);
        let batch = Batch {
            source: "s".into(),
            pollster: "cpu".into(),
            messages: vec![],
        };
        assert!(fan.publish(batch).is_err());
        assert_eq!(*a.got.lock().unwrap(), ["cpu"]);
        assert_eq!(*b.got.lock().unwrap(), ["cpu"]);
    }
}
