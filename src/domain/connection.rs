//! Connections to the outside systems, and what is wrong with one, in words an admin can act on.
//!
//! The Power Automate connectors let a connection expire silently; here every failure of a token refresh
//! or an access check becomes a [`Diagnosis`] with a headline and a fix, shown on the Connections page.

use serde::{Deserialize, Serialize};

/// API calls a connection may make per UTC day on Partner Center's paid plan (ARCHITECTURE.md, sync rules);
/// the Overview warns from 80% on.
pub const DAILY_CALL_QUOTA: i64 = 10_000;

/// How a day's API use stands against its allocation: spent, near it (80 %), or fine. One rule for the
/// Overview and the Diagnostics page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QuotaStanding {
    Fine,
    Near,
    Spent,
}

impl QuotaStanding {
    pub fn of(used: i64, max: i64) -> QuotaStanding {
        if used >= max {
            QuotaStanding::Spent
        } else if used * 5 >= max * 4 {
            QuotaStanding::Near
        } else {
            QuotaStanding::Fine
        }
    }
}

pub use super::system::System;

/// Why a connection does not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Diagnosis {
    /// AADSTS50055.
    PasswordExpired,
    /// AADSTS50076/50079, or `interaction_required`: a sign-in with MFA is needed.
    MfaRequired,
    /// AADSTS65001: nobody consented to cosell for this API, or consent was withdrawn.
    ConsentMissing,
    /// The stored grant no longer works: revoked (password change, admin), expired from disuse, or unknown.
    GrantRevoked,
    /// cosell's own client secret was refused (AADSTS7000215/7000222) or its app is unknown (700016).
    ClientCredentialsInvalid,
    /// Signed in, but the account lacks the role the system requires.
    MissingRole,
    /// Signed in, but the account is not a user of the CRM organization.
    NotAMember,
    /// The system did not answer, or answered with a server error.
    Unreachable,
    /// The CRM lacks fields the co-sell flows write (Salesforce: the package's custom fields).
    FieldsMissing,
}

impl Diagnosis {
    pub const ALL: [Diagnosis; 9] = [
        Diagnosis::PasswordExpired,
        Diagnosis::MfaRequired,
        Diagnosis::ConsentMissing,
        Diagnosis::GrantRevoked,
        Diagnosis::ClientCredentialsInvalid,
        Diagnosis::MissingRole,
        Diagnosis::NotAMember,
        Diagnosis::Unreachable,
        Diagnosis::FieldsMissing,
    ];

    /// From an Entra token-endpoint error: branch on the AADSTS code, then on `error` (never on the text).
    pub fn from_token_error(error: &str, aadsts: Option<u32>) -> Diagnosis {
        match aadsts {
            Some(50055) => Diagnosis::PasswordExpired,
            Some(50076 | 50079) => Diagnosis::MfaRequired,
            Some(65001) => Diagnosis::ConsentMissing,
            Some(50173 | 70008 | 700082 | 700084 | 70043 | 54005 | 9002313) => {
                Diagnosis::GrantRevoked
            }
            Some(7000215 | 7000222 | 700016 | 7000218) => Diagnosis::ClientCredentialsInvalid,
            _ => match error {
                "invalid_client" | "unauthorized_client" => Diagnosis::ClientCredentialsInvalid,
                "interaction_required" => Diagnosis::MfaRequired,
                "consent_required" => Diagnosis::ConsentMissing,
                "temporarily_unavailable" | "server_error" => Diagnosis::Unreachable,
                _ => Diagnosis::GrantRevoked,
            },
        }
    }

    pub fn as_code(self) -> &'static str {
        match self {
            Diagnosis::PasswordExpired => "password_expired",
            Diagnosis::MfaRequired => "mfa_required",
            Diagnosis::ConsentMissing => "consent_missing",
            Diagnosis::GrantRevoked => "grant_revoked",
            Diagnosis::ClientCredentialsInvalid => "client_credentials_invalid",
            Diagnosis::MissingRole => "missing_role",
            Diagnosis::NotAMember => "not_a_member",
            Diagnosis::Unreachable => "unreachable",
            Diagnosis::FieldsMissing => "fields_missing",
        }
    }

    pub fn from_code(code: &str) -> Option<Diagnosis> {
        Diagnosis::ALL.into_iter().find(|d| d.as_code() == code)
    }

    /// Whether the admin fixes it by reconnecting (signing in again) once the cause is dealt with.
    pub fn needs_reconnect(self) -> bool {
        !matches!(
            self,
            Diagnosis::Unreachable | Diagnosis::ClientCredentialsInvalid | Diagnosis::FieldsMissing
        )
    }

    /// One line: what is wrong.
    pub fn headline(self, system: System) -> String {
        let s = system.label();
        match self {
            Diagnosis::PasswordExpired => format!("The password of the {s} account has expired"),
            Diagnosis::MfaRequired => {
                format!("{s} requires a sign-in with multi-factor authentication")
            }
            Diagnosis::ConsentMissing => format!("cosell has not been granted access to {s}"),
            Diagnosis::GrantRevoked => format!("The {s} sign-in has expired or was revoked"),
            Diagnosis::ClientCredentialsInvalid => {
                "cosell's client secret was refused by Entra ID".to_string()
            }
            Diagnosis::MissingRole => {
                format!("The {s} account lacks the {}", system.required_role())
            }
            Diagnosis::NotAMember => format!("The account is not a user of the {s} organization"),
            Diagnosis::Unreachable => format!("{s} did not answer"),
            Diagnosis::FieldsMissing => format!("The {s} organization lacks the co-sell fields"),
        }
    }

    /// What to do about it.
    pub fn fix(self, system: System) -> String {
        let s = system.label();
        match self {
            Diagnosis::PasswordExpired => "Change the password (https://aka.ms/sspr or your IT administrator), then Reconnect.".into(),
            Diagnosis::MfaRequired => "Reconnect and complete the multi-factor sign-in; Partner Center requires MFA for App+User calls since April 2026.".into(),
            Diagnosis::ConsentMissing => "Reconnect as an administrator who can grant consent, or ask your Entra ID administrator to grant admin consent to cosell.".into(),
            Diagnosis::GrantRevoked => "Reconnect. This happens after a password change, when an administrator revokes sessions, or after a long time unused.".into(),
            Diagnosis::ClientCredentialsInvalid => "Renew cosell's client secret in its Entra ID app registration and update COSELL_OIDC_CLIENT_SECRET, then restart cosell.".into(),
            Diagnosis::MissingRole if system == System::SALESFORCE => "Grant it through the user's profile or a permission set (Setup → Permission Sets → System Permissions), or Reconnect as a System Administrator.".into(),
            Diagnosis::MissingRole => format!("Give the account the {} in {s}, or Reconnect with an account that has it.", system.required_role()),
            Diagnosis::NotAMember => format!("Add the account as a user of the {s} organization, or Reconnect with one that is."),
            Diagnosis::Unreachable => format!("Nothing to do yet: cosell retries by itself. If it lasts, check {s}'s service status and this server's network access."),
            Diagnosis::FieldsMissing => "Install Microsoft's co-sell package in the organization, or set the API names your fields have (COSELL_SALESFORCE_FIELDS), then Test the connection again.".into(),
        }
    }
}

/// Dataverse role template ids that may run the connector (crm-apis.md §2.8).
pub const CRM_ADMIN_ROLE_TEMPLATES: [&str; 2] = [
    "627090ff-40a3-4053-8790-584edc5be201", // System Administrator
    "119f245c-3cc8-4b62-b31c-d1a046ced15d", // System Customizer
];

/// Whether a Dataverse user's role template ids allow running the connector. Compare template ids, never
/// role ids or names: those differ per business unit.
pub fn crm_roles_sufficient<S: AsRef<str>>(role_templates: &[S]) -> Result<(), Diagnosis> {
    if role_templates.iter().any(|t| {
        CRM_ADMIN_ROLE_TEMPLATES
            .iter()
            .any(|ok| ok.eq_ignore_ascii_case(t.as_ref()))
    }) {
        Ok(())
    } else {
        Err(Diagnosis::MissingRole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_near_from_80_percent_and_spent_at_the_allocation() {
        assert_eq!(QuotaStanding::of(7_999, 10_000), QuotaStanding::Fine);
        assert_eq!(QuotaStanding::of(8_000, 10_000), QuotaStanding::Near);
        assert_eq!(QuotaStanding::of(10_000, 10_000), QuotaStanding::Spent);
    }

    #[test]
    fn token_errors_become_diagnoses() {
        let cases: &[(&str, Option<u32>, Diagnosis)] = &[
            ("invalid_grant", Some(50055), Diagnosis::PasswordExpired),
            ("interaction_required", Some(50076), Diagnosis::MfaRequired),
            ("invalid_grant", Some(65001), Diagnosis::ConsentMissing),
            ("invalid_grant", Some(50173), Diagnosis::GrantRevoked),
            ("invalid_grant", Some(70008), Diagnosis::GrantRevoked),
            ("invalid_grant", Some(700082), Diagnosis::GrantRevoked),
            (
                "invalid_client",
                Some(7000222),
                Diagnosis::ClientCredentialsInvalid,
            ),
            ("invalid_client", None, Diagnosis::ClientCredentialsInvalid),
            ("consent_required", None, Diagnosis::ConsentMissing),
            ("temporarily_unavailable", None, Diagnosis::Unreachable),
            ("invalid_grant", None, Diagnosis::GrantRevoked),
            ("something_new", Some(12345), Diagnosis::GrantRevoked),
        ];
        for (error, code, expected) in cases {
            assert_eq!(
                Diagnosis::from_token_error(error, *code),
                *expected,
                "{error} {code:?}"
            );
        }
    }

    #[test]
    fn every_diagnosis_has_words_and_a_stable_code() {
        use Diagnosis::*;
        for d in Diagnosis::ALL {
            assert_eq!(Diagnosis::from_code(d.as_code()), Some(d));
            for system in [System::PartnerCenter, System::DYNAMICS_365] {
                assert!(
                    !d.headline(system).is_empty() && d.fix(system).ends_with('.'),
                    "{d:?}"
                );
            }
            assert_eq!(
                d.fix(System::PartnerCenter).contains("Reconnect"),
                d.needs_reconnect(),
                "{d:?}"
            );
        }
        assert_eq!(Diagnosis::from_code("nope"), None);
        assert!(
            MissingRole
                .headline(System::PartnerCenter)
                .contains("Referrals admin")
        );
        assert!(
            MissingRole
                .headline(System::DYNAMICS_365)
                .contains("System Administrator or System Customizer")
        );
    }

    #[test]
    fn crm_roles_are_judged_by_template_id() {
        assert_eq!(
            crm_roles_sufficient(&["627090FF-40A3-4053-8790-584EDC5BE201"]),
            Ok(())
        );
        assert_eq!(
            crm_roles_sufficient(&[
                "236750cd-45ae-4939-ab12-b24b920ced93",
                "119f245c-3cc8-4b62-b31c-d1a046ced15d"
            ]),
            Ok(())
        );
        assert_eq!(
            crm_roles_sufficient(&["236750cd-45ae-4939-ab12-b24b920ced93"]),
            Err(Diagnosis::MissingRole)
        );
        assert_eq!(
            crm_roles_sufficient::<&str>(&[]),
            Err(Diagnosis::MissingRole)
        );
    }
}
