//! The closed sets of values the schema stores as text (an account's kind, a role, a
//! repository's visibility, …), as enums. Rows carry these, never the strings: a stored value
//! outside the set fails to decode, which is `DbError::Corrupt` (see `decode.rs`), and parsing
//! input is strict (`FromStr`: exactly the stored spelling).

/// An enum whose variants are stored as the given strings, with `as_str`, `Display`, a strict
/// `FromStr` (and `TryFrom<String>`), serde in the same spelling, and sqlx encoding and decoding
/// (so rows hold it and queries bind it directly).
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $s)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<$name, String> {
                match s {
                    $($s => Ok($name::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", stringify!($name), " {:?} (one of: {})"),
                        other,
                        [$($s),+].join(", ")
                    )),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> std::result::Result<$name, String> {
                s.parse()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <str as sqlx::Type<sqlx::Any>>::type_info()
            }
            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <str as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Any>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(
                value: sqlx::any::AnyValueRef<'r>,
            ) -> std::result::Result<$name, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                Ok(s.parse::<$name>()?)
            }
        }
    };
}

stored_enum! {
    /// The kind of an account.
    #[derive(Default)]
    AccountKind { #[default] User = "user", Org = "org", Robot = "robot" }
}

stored_enum! {
    /// Where a job is in its life, as stored in `jobs.state`. The SQL names the states as
    /// literals where it filters on them; a state written from Rust is bound as this value.
    #[derive(PartialOrd, Ord)]
    JobState {
        /// Waiting for `run_at` (new, or a retry after a failure).
        Queued = "queued",
        /// Claimed by a worker whose lease runs until `locked_until`.
        Running = "running",
        Done = "done",
        /// Failed for good (attempts exhausted, or a permanent error).
        Failed = "failed",
    }
}

stored_enum! {
    /// A role on a repository, ordered: each includes the ones before it.
    #[derive(PartialOrd, Ord)]
    Role { Read = "read", Write = "write", Admin = "admin" }
}

stored_enum! {
    /// A team's role in its organization (Quay's `member`, `creator`, `admin`).
    TeamRole { Member = "member", Creator = "creator", Admin = "admin" }
}

stored_enum! {
    /// Who may pull a repository without a permission on it.
    Visibility { Public = "public", Private = "private" }
}

stored_enum! {
    /// What holds a repository permission or a default permission.
    GranteeKind { User = "user", Robot = "robot", Team = "team" }
}

stored_enum! {
    /// What crossing a quota threshold does (Quay's spelling).
    QuotaLimitKind { Warning = "Warning", Reject = "Reject" }
}

stored_enum! {
    /// How an auto-prune policy picks the tags it ends.
    PruneMethod { NumberOfTags = "number_of_tags", CreationDate = "creation_date" }
}

stored_enum! {
    /// Where a manifest label comes from: the image config, or the API.
    LabelSource { Manifest = "manifest", Api = "api" }
}

impl From<AccountKind> for GranteeKind {
    /// The grantee kind of an account that is not an organization (organizations hold no
    /// permissions; callers never pass one).
    fn from(k: AccountKind) -> GranteeKind {
        match k {
            AccountKind::Robot => GranteeKind::Robot,
            AccountKind::User | AccountKind::Org => GranteeKind::User,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_spellings_round_trip_and_anything_else_is_refused() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(*r));
        }
        for k in QuotaLimitKind::ALL {
            assert_eq!(k.to_string().parse::<QuotaLimitKind>(), Ok(*k));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("warning".parse::<QuotaLimitKind>().is_err());
        assert!(" public".parse::<Visibility>().is_err());
        assert!(Role::Read < Role::Write && Role::Write < Role::Admin);
        assert_eq!(
            serde_json::to_string(&PruneMethod::NumberOfTags)
                .ok()
                .as_deref(),
            Some("\"number_of_tags\"")
        );
    }
}

stored_enum! {
    /// A repository's state (Quay's spelling): who may change its content.
    #[derive(Default)]
    RepoState {
        #[default]
        Normal = "NORMAL",
        /// Nobody writes content.
        ReadOnly = "READ_ONLY",
        /// Only the repository's mirror (its robot) writes content.
        Mirror = "MIRROR",
        /// Only its organization's mirror (its robot) writes content; the organization's mirror
        /// configuration manages it.
        OrgMirror = "ORG_MIRROR",
    }
}

stored_enum! {
    /// Where a repository mirror is in its cycle (Quay's `RepoMirrorStatus` names).
    MirrorStatus {
        Cancel = "CANCEL",
        Fail = "FAIL",
        NeverRun = "NEVER_RUN",
        Success = "SUCCESS",
        Syncing = "SYNCING",
        SyncNow = "SYNC_NOW",
    }
}
