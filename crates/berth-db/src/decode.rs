//! Decoding helpers shared by the row types: rows are read by column name through
//! `#[derive(sqlx::FromRow)]`, and a value a row type cannot hold surfaces as `sqlx::Error::ColumnDecode`,
//! which `DbError::from` turns into `DbError::Corrupt` (never a panic).

use sqlx::any::{Any, AnyTypeInfo, AnyValueRef};
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::types::Type;

/// A flag stored as an integer (the migrations use BIGINT 0/1 on both databases, since SQLite has
/// no boolean), read with `#[sqlx(try_from = "IntBool")]`: sqlx's `Any` driver decodes `bool` only
/// from a boolean column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntBool(bool);

impl Type<Any> for IntBool {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for IntBool {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(IntBool(<i64 as Decode<'r, Any>>::decode(value)? != 0))
    }
}

impl From<IntBool> for bool {
    fn from(b: IntBool) -> bool {
        b.0
    }
}

#[cfg(test)]
mod tests {
    use crate::{AccountKind, Db, DbError, NewAccount};

    async fn db() -> (tempfile::TempDir, Db) {
        crate::test_db().await
    }

    async fn raw(db: &Db, sql: &'static str) {
        sqlx::query(sql).execute(db.pool()).await.expect(sql);
    }

    #[tokio::test]
    async fn flags_decode_from_integers_and_a_non_integer_flag_is_a_corrupt_row() {
        let (_d, db) = db().await;
        let id = db
            .create_account(
                &NewAccount {
                    name: "alice",
                    kind: AccountKind::User,
                    superuser: true,
                    ..Default::default()
                },
                false,
            )
            .await
            .expect("create")
            .expect("new");
        let a = db.account_by_id(id).await.expect("read").expect("row");
        assert!(a.superuser && a.enabled);
        assert_eq!(a.kind, AccountKind::User);
        // SQLite keeps a text value in a BIGINT column; reading it must not panic.
        raw(&db, "UPDATE accounts SET enabled = 'yes'").await;
        let err = db.account_by_id(id).await.expect_err("corrupt");
        assert!(matches!(err, DbError::Corrupt(_)), "{err:?}");
    }

    #[tokio::test]
    async fn an_unknown_account_kind_or_job_state_is_a_corrupt_row() {
        let (_d, db) = db().await;
        raw(
            &db,
            "INSERT INTO accounts (name, kind, created_at) VALUES ('bob', 'alien', 0)",
        )
        .await;
        let err = db.account_by_name("bob").await.expect_err("corrupt");
        assert!(matches!(err, DbError::Corrupt(_)), "{err:?}");
        raw(
            &db,
            "INSERT INTO jobs (kind, dedup_key, payload, state, run_at, created_at, updated_at)
             VALUES ('k', 'a', '{}', 'paused', 0, 0, 0)",
        )
        .await;
        let err = db.job_counts().await.expect_err("corrupt");
        assert!(matches!(err, DbError::Corrupt(_)), "{err:?}");
    }
}
