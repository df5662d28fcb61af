//! The co-sell solution's column names (settings: unconfirmed by the reference), and the columns each
//! read selects.

/// The co-sell solution's columns on `opportunity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub sync: String,
    pub referral_id: String,
    pub referral_link: String,
    pub audit: String,
    pub solutions: String,
    pub help: String,
}

impl Default for Columns {
    fn default() -> Columns {
        Columns {
            sync: "msp_syncwithpartnercenter".into(),
            referral_id: "msp_referralid".into(),
            referral_link: "msp_referrallink".into(),
            audit: "msp_cosellaudit".into(),
            solutions: "msp_microsoftsolutions".into(),
            help: "msp_howcanmicrosofthelp".into(),
        }
    }
}

impl Columns {
    const KEYS: [&'static str; 6] = [
        "sync",
        "referral_id",
        "referral_link",
        "audit",
        "solutions",
        "help",
    ];

    /// `sync=new_sync,audit=new_audit`: the columns named differ from the defaults, the others keep
    /// theirs. A key not in the list, or a name that is not a Dataverse logical name, is refused.
    pub fn parse(text: &str) -> Result<Columns, String> {
        let mut columns = Columns::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, name) = pair
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("“{pair}” is not key=column"))?;
            let logical = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !logical {
                return Err(format!(
                    "“{name}” is not a Dataverse logical name (lower-case letters, digits, _)"
                ));
            }
            let slot = match key {
                "sync" => &mut columns.sync,
                "referral_id" => &mut columns.referral_id,
                "referral_link" => &mut columns.referral_link,
                "audit" => &mut columns.audit,
                "solutions" => &mut columns.solutions,
                "help" => &mut columns.help,
                other => {
                    return Err(format!(
                        "unknown column key “{other}” (known: {})",
                        Columns::KEYS.join(", ")
                    ));
                }
            };
            *slot = name.to_string();
        }
        Ok(columns)
    }

    /// What the change feed tracks.
    pub(super) fn feed(&self) -> String {
        format!(
            "name,statecode,{},{},{},_customerid_value",
            self.sync, self.referral_id, self.referral_link
        )
    }

    /// The opportunity's own columns.
    pub(super) fn own(&self) -> String {
        format!(
            "name,estimatedvalue,estimatedclosedate,description,statecode,{},{},{},_customerid_value,_transactioncurrencyid_value",
            self.sync, self.referral_id, self.referral_link
        )
    }

    /// Everything the rules read.
    pub(super) fn full(&self) -> String {
        format!(
            "name,description,estimatedvalue,estimatedclosedate,statecode,statuscode,salesstage,{},{},{},{},{},{},\
             _customerid_value,_parentaccountid_value,_parentcontactid_value,_transactioncurrencyid_value,_ownerid_value",
            self.sync, self.referral_id, self.referral_link, self.audit, self.solutions, self.help
        )
    }
}

pub(super) const ACCOUNT_COLUMNS: &str = "accountid,name,address1_line1,address1_city,address1_stateorprovince,address1_postalcode,address1_country,_primarycontactid_value";
/// The account columns the rules read: a change to one of them can make an opportunity ready.
pub(super) const ACCOUNT_FEED_COLUMNS: &str = "name,address1_line1,address1_city,address1_stateorprovince,address1_postalcode,address1_country";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_settings_override_only_what_they_name() {
        let c = Columns::parse("sync=new_sync, audit=new_cosellaudit").unwrap();
        assert_eq!(c.sync, "new_sync");
        assert_eq!(c.audit, "new_cosellaudit");
        assert_eq!(c.referral_id, Columns::default().referral_id);
        assert_eq!(Columns::parse("").unwrap(), Columns::default());
        assert!(
            Columns::parse("colour=x")
                .unwrap_err()
                .contains("unknown column key")
        );
        assert!(
            Columns::parse("sync=Bad Name")
                .unwrap_err()
                .contains("logical name")
        );
        assert!(Columns::parse("sync").unwrap_err().contains("key=column"));
    }
}
