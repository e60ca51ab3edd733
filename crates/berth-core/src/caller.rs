//! Who asks for a change, and the audit record that commits with it.

use crate::Result;
use crate::auth::{Actor, AuditEntry, Who};
use berth_db::{Db, WriteTx};

/// The caller of an account or policy use case that changes something: the signed-in account
/// (which the use case's access check needs), and the address it called from. Content writes,
/// which may come from a registry token rather than an account, take the [`Who`] this reduces
/// to.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub actor: &'a Actor,
    pub ip: Option<&'a str>,
}

impl<'a> Caller<'a> {
    pub fn new(actor: &'a Actor, ip: Option<&'a str>) -> Caller<'a> {
        Caller { actor, ip }
    }

    /// The caller as the audit log records it.
    pub fn who(&self) -> Who {
        Who::new(Some(self.actor), self.ip)
    }

    /// An audit entry of `kind` performed by this caller.
    pub(crate) fn audit(&self, kind: &str) -> AuditEntry {
        self.who().entry(kind)
    }
}

/// Writes `entry` inside `w`: the record exists exactly when the change it describes does.
pub(crate) async fn record_in(db: &Db, w: &mut WriteTx, entry: AuditEntry) -> Result<()> {
    db.insert_audit_in(w, &[entry.row()]).await?;
    Ok(())
}
