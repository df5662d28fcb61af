//! Who may do what. Authorization comes from the `roles` claim of the id_token (Entra app roles),
//! never from display claims such as `name` or `preferred_username`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a signed-in person may do. Ordered: each level includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Signed in, but holds neither app role: may see only the explanation of how to get one.
    NoRole,
    /// May read everything, change nothing.
    Viewer,
    /// May change everything.
    Admin,
}

impl Access {
    /// The access granted by a set of app-role values, given the role names configured for this tenant.
    /// Admin wins when a person holds both roles.
    pub fn from_roles<S: AsRef<str>>(roles: &[S], names: &RoleNames) -> Access {
        let has = |wanted: &str| roles.iter().any(|r| r.as_ref() == wanted);
        if has(&names.admin) {
            Access::Admin
        } else if has(&names.viewer) {
            Access::Viewer
        } else {
            Access::NoRole
        }
    }

    /// Whether this access level is enough for an action that needs `needed`.
    pub fn allows(self, needed: Access) -> bool {
        self >= needed
    }

    /// Plain label for people.
    pub fn label(self) -> &'static str {
        match self {
            Access::NoRole => "No role",
            Access::Viewer => "Viewer",
            Access::Admin => "Referrals admin",
        }
    }

    /// Stable code for storage.
    pub fn as_code(self) -> &'static str {
        match self {
            Access::NoRole => "none",
            Access::Viewer => "viewer",
            Access::Admin => "admin",
        }
    }

    pub fn from_code(code: &str) -> Option<Access> {
        match code {
            "none" => Some(Access::NoRole),
            "viewer" => Some(Access::Viewer),
            "admin" => Some(Access::Admin),
            _ => None,
        }
    }
}

/// The app-role values (as defined in the Entra app registration) that map to our access levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleNames {
    pub admin: String,
    pub viewer: String,
}

impl Default for RoleNames {
    fn default() -> Self {
        RoleNames {
            admin: "Cosell.Admin".into(),
            viewer: "Cosell.Viewer".into(),
        }
    }
}

/// The person behind a session, as established by a verified id_token.
/// Keyed by `tid` + `oid`: the immutable identifiers (the `sub` claim is pairwise per app).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub tenant_id: String,
    pub object_id: String,
    /// Display only.
    pub name: String,
    /// Display only (`preferred_username`, mutable).
    pub username: String,
    pub access: Access,
    /// Unix milliseconds. A session older than the user's "sessions revoked" mark is no longer valid.
    pub signed_in_at_ms: i64,
}

/// A person who has signed in to this dashboard, as the Users page lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub tenant_id: String,
    pub object_id: String,
    pub name: String,
    pub username: String,
    /// Access at their latest sign-in.
    pub access: Access,
    #[serde(with = "time::serde::rfc3339")]
    pub last_sign_in_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sessions_revoked_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_to_access() {
        let names = RoleNames::default();
        let cases: &[(&[&str], Access)] = &[
            (&[], Access::NoRole),
            (&["Something.Else"], Access::NoRole),
            (&["Cosell.Viewer"], Access::Viewer),
            (&["Cosell.Admin"], Access::Admin),
            (&["Cosell.Viewer", "Cosell.Admin"], Access::Admin),
            // Role values are case-sensitive in Entra tokens; a near miss grants nothing.
            (&["cosell.admin"], Access::NoRole),
        ];
        for (roles, expected) in cases {
            assert_eq!(
                Access::from_roles(roles, &names),
                *expected,
                "roles {roles:?}"
            );
        }
    }

    #[test]
    fn configured_role_names_are_used() {
        let names = RoleNames {
            admin: "Referrals.Admin".into(),
            viewer: "Referrals.Read".into(),
        };
        assert_eq!(
            Access::from_roles(&["Referrals.Read"], &names),
            Access::Viewer
        );
        assert_eq!(
            Access::from_roles(&["Cosell.Admin"], &names),
            Access::NoRole
        );
    }

    #[test]
    fn access_is_ordered() {
        assert!(Access::Admin.allows(Access::Viewer));
        assert!(Access::Viewer.allows(Access::Viewer));
        assert!(!Access::Viewer.allows(Access::Admin));
        assert!(!Access::NoRole.allows(Access::Viewer));
    }

    #[test]
    fn access_codes_round_trip() {
        for a in [Access::NoRole, Access::Viewer, Access::Admin] {
            assert_eq!(Access::from_code(a.as_code()), Some(a));
        }
        assert_eq!(Access::from_code("root"), None);
    }
}
