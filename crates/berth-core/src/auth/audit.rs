//! The audit log. Account, permission, token and login events are written before the request
//! answers; pulls (the hot path) are buffered and written in batches every second, so that a
//! manifest GET never waits for a write transaction.

use berth_db::{AuditRow, Db, now_ms};
use std::sync::{Arc, Mutex};

/// One event: what (`kind`, Quay's log kind names), who, where, and details.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub kind: String,
    /// (account name, kind: user | robot | org); `None` for anonymous.
    pub performer: Option<(String, String)>,
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub ip: Option<String>,
    pub metadata: serde_json::Value,
}

impl AuditEntry {
    pub fn new(kind: &str) -> AuditEntry {
        AuditEntry {
            kind: kind.to_string(),
            metadata: serde_json::json!({}),
            ..AuditEntry::default()
        }
    }
    pub fn by(mut self, actor: Option<&super::Actor>) -> AuditEntry {
        self.performer = actor.map(|a| (a.name.clone(), a.kind.as_str().to_string()));
        self
    }
    pub fn performer(mut self, name: &str, kind: &str) -> AuditEntry {
        self.performer = Some((name.to_string(), kind.to_string()));
        self
    }
    pub fn namespace(mut self, ns: &str) -> AuditEntry {
        self.namespace = Some(ns.to_string());
        self
    }
    /// Sets the repository and its namespace.
    pub fn repo(mut self, repo: &str) -> AuditEntry {
        self.namespace = Some(repo.split('/').next().unwrap_or(repo).to_string());
        self.repository = Some(repo.to_string());
        self
    }
    /// Sets the repository when there is one, else the namespace (a setting that applies at
    /// either level, such as a policy).
    pub fn scope(self, namespace: &str, repo: Option<&str>) -> AuditEntry {
        match repo {
            Some(r) => self.repo(r),
            None => self.namespace(namespace),
        }
    }
    pub fn ip(mut self, ip: Option<&str>) -> AuditEntry {
        self.ip = ip.map(str::to_string);
        self
    }
    pub fn meta(mut self, metadata: serde_json::Value) -> AuditEntry {
        self.metadata = metadata;
        self
    }

    pub(crate) fn row(self) -> AuditRow {
        let (performer, performer_kind) = match self.performer {
            Some((n, k)) => (Some(n), Some(k)),
            None => (None, Some("anonymous".to_string())),
        };
        AuditRow {
            id: 0,
            at: now_ms(),
            kind: self.kind,
            performer,
            performer_kind,
            namespace: self.namespace,
            repository: self.repository,
            ip: self.ip,
            metadata: self.metadata.to_string(),
        }
    }
}

/// Who asks for a change, as the audit log records them: the account (name, kind) and the
/// client's address. Every core method that changes something takes one and writes its own
/// audit record, in the change's transaction where it has one.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// (account name, kind: user | robot | org); `None` for anonymous.
    pub performer: Option<(String, String)>,
    pub ip: Option<String>,
}

impl Who {
    pub fn new(actor: Option<&super::Actor>, ip: Option<&str>) -> Who {
        Who {
            performer: actor.map(|a| (a.name.clone(), a.kind.as_str().to_string())),
            ip: ip.map(str::to_string),
        }
    }
    /// An entry of `kind` performed by this caller.
    pub fn entry(&self, kind: &str) -> AuditEntry {
        AuditEntry {
            performer: self.performer.clone(),
            ip: self.ip.clone(),
            ..AuditEntry::new(kind)
        }
    }
}

#[derive(Clone)]
pub struct AuditLog {
    db: Db,
    pending: Arc<Mutex<Vec<AuditRow>>>,
}

/// Buffered entries beyond this are written at once rather than waiting for the next tick.
const MAX_PENDING: usize = 2048;

impl AuditLog {
    pub fn new(db: Db) -> AuditLog {
        AuditLog {
            db,
            pending: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Writes an entry now. A failure to write is logged, never hidden.
    pub async fn record(&self, e: AuditEntry) {
        let row = e.row();
        if let Err(err) = self.db.insert_audit(std::slice::from_ref(&row)).await {
            tracing::error!(error = %err, kind = %row.kind, "could not write an audit log entry; queued for retry");
            self.push(row);
        }
    }

    /// Queues an entry for the next batch (pulls).
    pub fn record_later(&self, e: AuditEntry) {
        let full = self.push(e.row());
        if full {
            let me = self.clone();
            tokio::spawn(async move { me.flush().await });
        }
    }

    fn push(&self, row: AuditRow) -> bool {
        match self.pending.lock() {
            Ok(mut p) => {
                p.push(row);
                p.len() >= MAX_PENDING
            }
            Err(_) => false,
        }
    }

    /// Writes queued entries.
    pub async fn flush(&self) {
        let batch: Vec<AuditRow> = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        if let Err(err) = self.db.insert_audit(&batch).await {
            tracing::warn!(error = %err, entries = batch.len(), "could not write audit log entries; will retry");
            if let Ok(mut p) = self.pending.lock() {
                let mut batch = batch;
                batch.append(&mut p);
                *p = batch;
            }
        }
    }

    /// Flushes queued entries every second, forever.
    pub fn spawn_flusher(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                me.flush().await;
            }
        })
    }
}
