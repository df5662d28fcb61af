//! The names a CRM gives the co-sell fields on its opportunity (Microsoft's co-sell solution for
//! Dynamics 365, its managed package for Salesforce). The reference confirms none of them
//! (partner-center.md §3.3 gives labels only), so they are settings: defaults here, overridden by
//! `COSELL_DYNAMICS_COLUMNS` / `COSELL_SALESFORCE_FIELDS` and on the Mapping page.

use crate::domain::system::Crm;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoSellFields {
    /// "Sync with Partner Center".
    pub sync: String,
    pub referral_id: String,
    pub referral_link: String,
    /// The sync trail sellers read on the record.
    pub audit: String,
    /// "How can Microsoft help?"
    pub help: String,
    /// Partner Center solution ids.
    pub solutions: String,
}

const KEYS: [&str; 6] = [
    "sync",
    "referral_id",
    "referral_link",
    "audit",
    "help",
    "solutions",
];

impl CoSellFields {
    /// The co-sell solution's column names in Dataverse.
    pub fn dynamics() -> CoSellFields {
        CoSellFields {
            sync: "msp_syncwithpartnercenter".into(),
            referral_id: "msp_referralid".into(),
            referral_link: "msp_referrallink".into(),
            audit: "msp_cosellaudit".into(),
            help: "msp_howcanmicrosofthelp".into(),
            solutions: "msp_microsoftsolutions".into(),
        }
    }

    /// The managed package's API names on Salesforce's Opportunity.
    pub fn salesforce() -> CoSellFields {
        CoSellFields {
            sync: "Sync_with_Partner_Center__c".into(),
            referral_id: "Referral_Identifier__c".into(),
            referral_link: "Referral_Link__c".into(),
            audit: "Audit__c".into(),
            help: "How_can_Microsoft_help__c".into(),
            solutions: "Microsoft_Solutions__c".into(),
        }
    }

    pub fn defaults(crm: Crm) -> CoSellFields {
        match crm {
            Crm::Dynamics365 => CoSellFields::dynamics(),
            Crm::Salesforce => CoSellFields::salesforce(),
        }
    }

    /// `key = name` pairs, separated by commas or lines: the fields named differ from `crm`'s defaults,
    /// the others keep theirs. A key not in the list, or a name the CRM could not have, is refused.
    pub fn parse(crm: Crm, text: &str) -> Result<CoSellFields, String> {
        let mut fields = CoSellFields::defaults(crm);
        for pair in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (key, name) = pair
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("“{pair}” is not key = name"))?;
            let valid = match crm {
                // Dataverse logical names are lower case.
                Crm::Dynamics365 => {
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                }
                Crm::Salesforce => {
                    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }
            };
            if !valid {
                return Err(match crm {
                    Crm::Dynamics365 => format!(
                        "“{name}” is not a Dataverse logical name (lower-case letters, digits, _)"
                    ),
                    Crm::Salesforce => {
                        format!("“{name}” is not a Salesforce API name (letters, digits, _)")
                    }
                });
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
                        KEYS.join(", ")
                    ));
                }
            };
            *slot = name.to_string();
        }
        Ok(fields)
    }

    /// One `key = name` line each, as [`CoSellFields::parse`] reads them.
    pub fn to_text(&self) -> String {
        KEYS.iter()
            .zip(self.all())
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n")
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
    fn named_fields_override_only_what_they_name_and_round_trip_as_text() {
        let c =
            CoSellFields::parse(Crm::Dynamics365, "sync=new_sync, audit=new_cosellaudit").unwrap();
        assert_eq!(c.sync, "new_sync");
        assert_eq!(c.audit, "new_cosellaudit");
        assert_eq!(c.referral_id, CoSellFields::dynamics().referral_id);
        assert_eq!(
            CoSellFields::parse(Crm::Dynamics365, "").unwrap(),
            CoSellFields::dynamics()
        );
        assert_eq!(
            CoSellFields::parse(Crm::Dynamics365, &c.to_text()).unwrap(),
            c
        );
        let f = CoSellFields::parse(Crm::Salesforce, "sync = Share__c\naudit = Log__c").unwrap();
        assert_eq!((f.sync.as_str(), f.audit.as_str()), ("Share__c", "Log__c"));
        assert_eq!(f.help, CoSellFields::salesforce().help);
        for (crm, text, says) in [
            (Crm::Dynamics365, "colour=x", "unknown field key"),
            (Crm::Dynamics365, "sync=Bad Name", "logical name"),
            (Crm::Dynamics365, "sync=New_Sync", "logical name"),
            (Crm::Salesforce, "sync=Bad Name", "API name"),
            (Crm::Salesforce, "sync=9x", "API name"),
            (Crm::Salesforce, "sync", "key = name"),
        ] {
            let e = CoSellFields::parse(crm, text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
