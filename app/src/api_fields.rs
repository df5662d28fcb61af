//! The fields each server function takes, by endpoint. The server refuses a call whose body sends any
//! other field, one field twice, or a value longer than [`MAX_FIELD_BYTES`], with a 400 naming it,
//! before the function runs: `server_fn` would silently ignore the extra field. A test checks that every registered
//! server function is listed here (and that the list names only registered ones), so a new function
//! cannot escape it.

/// The longest value any field may carry (the mapping tables are the longest text admins write).
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Endpoint → field names; `query[…]` names are the fields of a filter struct as `serde_qs` writes them.
pub const FIELDS: &[(&str, &[&str])] = &[
    ("whoami", &[]),
    ("health", &[]),
    ("list_opportunities", &["search", "after_name", "after_id"]),
    ("set_sync", &["crm_id", "on"]),
    ("sync_now", &["crm_id"]),
    ("check_opportunity", &["crm_id"]),
    ("opportunity_timeline", &["crm_id", "before"]),
    ("list_flows", &[]),
    ("set_flow", &["flow", "active"]),
    ("activate_all", &[]),
    (
        "register_webhook",
        &[
            "callback_url",
            "referral_created",
            "referral_updated",
            "related_referral_created",
            "related_referral_updated",
            "overwrite",
        ],
    ),
    (
        "list_runs",
        &[
            "query[flow]",
            "query[status]",
            "query[record]",
            "query[from]",
            "query[to]",
            "before",
        ],
    ),
    ("run_detail", &["id"]),
    ("resubmit_run", &["id"]),
    (
        "resubmit_failed",
        &["flow", "status", "record", "from", "to"],
    ),
    ("list_users", &[]),
    ("end_sessions", &["tenant_id", "object_id"]),
    (
        "list_audit",
        &[
            "query[record]",
            "query[run]",
            "query[direction]",
            "query[outcome]",
            "query[from]",
            "query[to]",
            "before",
        ],
    ),
    ("list_connections", &[]),
    ("test_connection", &["system"]),
    ("disconnect", &["system"]),
    ("get_mapping", &[]),
    ("get_retention", &[]),
    ("overview_charts", &[]),
    ("save_retention", &["runs_days", "audit_days"]),
    ("get_budgets", &[]),
    ("save_budgets", &["partner_center", "crm"]),
    ("get_alert_settings", &[]),
    (
        "save_alert_settings",
        &[
            "failed_runs",
            "window_minutes",
            "webhook_on",
            "webhook_url",
            "webhook_format",
            "webhook_secret",
            "email_on",
            "email_host",
            "email_port",
            "email_security",
            "email_username",
            "email_password",
            "email_from",
            "email_to",
        ],
    ),
    ("send_test_alert", &[]),
    ("alert_banner", &[]),
    ("list_alerts", &[]),
    ("acknowledge_alert", &["id"]),
    ("diagnostics", &[]),
    ("run_diagnostics", &[]),
    ("diagnostics_summary", &[]),
    ("reconcile_now", &[]),
    ("send_test_event", &[]),
    (
        "save_mapping",
        &[
            "stages",
            "statuses",
            "help",
            "currencies",
            "solutions",
            "sync_leads",
            "cosell_fields",
        ],
    ),
];

/// The fields of `endpoint`, if it is a server function.
pub fn fields_of(endpoint: &str) -> Option<&'static [&'static str]> {
    FIELDS
        .iter()
        .find(|(name, _)| *name == endpoint)
        .map(|(_, fields)| *fields)
}

/// What is wrong with `pairs` as the input of a function taking `fields`, if anything.
pub fn check_fields<'a>(
    fields: &[&str],
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        if !fields.contains(&name) {
            return Err(if fields.is_empty() {
                format!("this action takes no fields, but “{name}” was sent")
            } else {
                format!(
                    "“{name}” is not a field of this action (it takes {})",
                    fields.join(", ")
                )
            });
        }
        if seen.contains(&name) {
            return Err(format!("“{name}” was sent more than once"));
        }
        if value.len() > MAX_FIELD_BYTES {
            return Err(format!(
                "“{name}” is {} bytes long; at most {MAX_FIELD_BYTES} are accepted",
                value.len()
            ));
        }
        seen.push(name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_repeated_and_oversized_fields_are_named() {
        let fields = ["flow", "active"];
        assert_eq!(
            check_fields(&fields, [("flow", "x"), ("active", "true")]),
            Ok(())
        );
        assert!(
            check_fields(&fields, [("flow", "x"), ("admin", "1")])
                .unwrap_err()
                .contains("“admin”")
        );
        assert!(
            check_fields(&fields, [("flow", "x"), ("flow", "y")])
                .unwrap_err()
                .contains("more than once")
        );
        let big = "x".repeat(MAX_FIELD_BYTES + 1);
        assert!(
            check_fields(&fields, [("flow", big.as_str())])
                .unwrap_err()
                .contains("bytes long")
        );
        assert!(
            check_fields(&[], [("x", "")])
                .unwrap_err()
                .contains("takes no fields")
        );
    }
}
