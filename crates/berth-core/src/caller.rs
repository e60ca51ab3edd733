//! Who asks for a change, and the audit record that commits with it.

use crate::Result;
use crate::auth::{Actor, AuditEntry};
use berth_db::{Db, WriteTx};

/// The caller of a use case that changes something: the account, and the address it called
/// from (both go into the audit record).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub actor: &'a Actor,
    pub ip: Option<&'a str>,
}

impl<'a> Caller<'a> {
    pub fn new(actor: &'a Actor, ip: Option<&'a str>) -> Caller<'a> {
        Caller { actor, ip }
    }

    /// An audit entry of `kind` performed by this caller.
    pub(crate) fn audit(&self, kind: &str) -> AuditEntry {
        AuditEntry::new(kind).by(Some(self.actor)).ip(self.ip)
    }
}

/// Writes `entry` inside `w`: the record exists exactly when the change it describes does.
pub(crate) async fn record_in(db: &Db, w: &mut WriteTx, entry: AuditEntry) -> Result<()> {
    db.insert_audit_in(w, &[entry.row()]).await?;
    Ok(())
}
