//! Pull times, collected in memory and written in batches.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct PullRecorder {
    pending: Mutex<HashMap<i64, i64>>,
}

impl PullRecorder {
    pub fn record(&self, repo_id: i64, at: i64) {
        if let Ok(mut p) = self.pending.lock() {
            let e = p.entry(repo_id).or_insert(at);
            *e = (*e).max(at);
        }
    }
    pub fn take(&self) -> Vec<(i64, i64)> {
        self.pending
            .lock()
            .map(|mut p| p.drain().collect())
            .unwrap_or_default()
    }
    pub fn put_back(&self, items: Vec<(i64, i64)>) {
        for (r, at) in items {
            self.record(r, at);
        }
    }
}
