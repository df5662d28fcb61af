//! The co-sell fields on Salesforce's Opportunity (Microsoft's managed package; partner-center.md §3.3),
//! by API name. They are settings (`COSELL_SALESFORCE_FIELDS`) with the package's names as defaults, and
//! the connection check reads the object's describe to say which ones the org lacks.

/// API names of the co-sell fields on Opportunity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub sync: String,
    pub referral_id: String,
    pub referral_link: String,
    pub audit: String,
    pub help: String,
    pub solutions: String,
}

impl Default for Fields {
    fn default() -> Fields {
        Fields {
            sync: "Sync_with_Partner_Center__c".into(),
            referral_id: "Referral_Identifier__c".into(),
            referral_link: "Referral_Link__c".into(),
            audit: "Audit__c".into(),
            help: "How_can_Microsoft_help__c".into(),
            solutions: "Microsoft_Solutions__c".into(),
        }
    }
}

impl Fields {
    const KEYS: [&'static str; 6] = [
        "sync",
        "referral_id",
        "referral_link",
        "audit",
        "help",
        "solutions",
    ];

    /// `sync=My_Sync__c,audit=My_Audit__c`: the named fields differ from the defaults. A key not in the
    /// list, or a name that is not an API name, is refused.
    pub fn parse(text: &str) -> Result<Fields, String> {
        let mut fields = Fields::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, name) = pair
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("“{pair}” is not key=field"))?;
            let api_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !api_name {
                return Err(format!(
                    "“{name}” is not a Salesforce API name (letters, digits, _)"
                ));
            }
            let slot = match key {
                "sync" => &mut fields.sync,
                "referral_id" => &mut fields.referral_id,
                "referral_link" => &mut fields.referral_link,
                "audit" => &mut fields.audit,
                "help" => &mut fields.help,
                "solutions" => &mut fields.solutions,
                other => {
                    return Err(format!(
                        "unknown field key “{other}” (known: {})",
                        Fields::KEYS.join(", ")
                    ));
                }
            };
            *slot = name.to_string();
        }
        Ok(fields)
    }

    pub fn all(&self) -> [&str; 6] {
        [
            &self.sync,
            &self.referral_id,
            &self.referral_link,
            &self.audit,
            &self.help,
            &self.solutions,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_settings_override_only_what_they_name() {
        let f = Fields::parse("sync=Share__c, audit = Log__c").unwrap();
        assert_eq!(f.sync, "Share__c");
        assert_eq!(f.audit, "Log__c");
        assert_eq!(f.referral_id, Fields::default().referral_id);
        assert_eq!(Fields::parse("").unwrap(), Fields::default());
        assert!(
            Fields::parse("color=X__c")
                .unwrap_err()
                .contains("unknown field key")
        );
        assert!(
            Fields::parse("sync=Bad Name")
                .unwrap_err()
                .contains("API name")
        );
        assert!(Fields::parse("sync=9x").unwrap_err().contains("API name"));
        assert!(Fields::parse("sync").unwrap_err().contains("key=field"));
    }
}
