//! Decoding helpers shared by the row types: rows are read by column name through
//! `#[derive(sqlx::FromRow)]`, and a value a row type cannot hold surfaces as `sqlx::Error::ColumnDecode`,
//! which `DbError::from` turns into `DbError::Corrupt` (never a panic).

use sqlx::any::{Any, AnyTypeInfo, AnyValueRef};
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::types::Type;

/// A flag stored as an integer (the migrations use INTEGER 0/1 on both databases, since SQLite has
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
