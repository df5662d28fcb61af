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
    /// What the change feed tracks: the opportunity's own columns, as a read of it gives them, so
    /// that the feed can tell which of them changed (a delta link keeps the columns it was made with).
    fn feed(&self) -> String {
        self.own()
    }

    /// The opportunity's own columns, lookups as ids.
    fn own(&self) -> String {
        format!(
            "name,description,estimatedvalue,estimatedclosedate,statecode,statuscode,salesstage,{},{},{},{},{},{},\
             _customerid_value,_transactioncurrencyid_value,_ownerid_value,_parentcontactid_value",
            self.sync, self.referral_id, self.referral_link, self.audit, self.solutions, self.help
        )
    }

    /// Everything the rules read of the opportunity itself: its own columns, and the account a
    /// contact customer belongs to.
    fn full(&self) -> String {
        format!("{},_parentaccountid_value", self.own())
    }
}

pub(super) const ACCOUNT_COLUMNS: &str = "accountid,name,address1_line1,address1_city,address1_stateorprovince,address1_postalcode,address1_country,_primarycontactid_value";
/// The account columns the rules read: a change to one of them can make an opportunity ready.
pub(super) const ACCOUNT_FEED_COLUMNS: &str = "name,address1_line1,address1_city,address1_stateorprovince,address1_postalcode,address1_country";
