//! The columns each Dataverse read selects, with the co-sell columns as the organization names them.

/// The co-sell solution's columns, named as the organization names them.
pub type Columns = super::super::cosell_fields::CoSellFields;

/// The columns each read selects.
pub(super) trait Selects {
    fn feed(&self) -> String;
    fn own(&self) -> String;
    fn full(&self) -> String;
}

impl Selects for Columns {
    /// What the change feed tracks.
    fn feed(&self) -> String {
        format!(
            "name,statecode,{},{},{},_customerid_value",
            self.sync, self.referral_id, self.referral_link
        )
    }

    /// The opportunity's own columns.
    fn own(&self) -> String {
        format!(
            "name,estimatedvalue,estimatedclosedate,description,statecode,{},{},{},_customerid_value,_transactioncurrencyid_value",
            self.sync, self.referral_id, self.referral_link
        )
    }

    /// Everything the rules read.
    fn full(&self) -> String {
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
