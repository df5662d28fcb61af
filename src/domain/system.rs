//! Which outside system: Partner Center, or one of the CRMs. One type for every "which system"
//! question (connections, API call counts, diagnoses, flow names), so a CRM is never mistaken for
//! Partner Center and a flow catalog can only be asked of a CRM.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A CRM cosell keeps opportunities in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Crm {
    Dynamics365,
    Salesforce,
}

/// A system cosell connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    PartnerCenter,
    Crm(Crm),
}

impl Crm {
    pub const ALL: [Crm; 2] = [Crm::Dynamics365, Crm::Salesforce];

    pub fn as_code(self) -> &'static str {
        System::Crm(self).as_code()
    }

    pub fn from_code(code: &str) -> Option<Crm> {
        match System::from_code(code)? {
            System::Crm(crm) => Some(crm),
            System::PartnerCenter => None,
        }
    }

    pub fn label(self) -> &'static str {
        System::Crm(self).label()
    }
}

impl From<Crm> for System {
    fn from(crm: Crm) -> System {
        System::Crm(crm)
    }
}

impl System {
    pub const DYNAMICS_365: System = System::Crm(Crm::Dynamics365);
    pub const SALESFORCE: System = System::Crm(Crm::Salesforce);
    pub const ALL: [System; 3] = [
        System::PartnerCenter,
        System::DYNAMICS_365,
        System::SALESFORCE,
    ];

    pub fn label(self) -> &'static str {
        match self {
            System::PartnerCenter => "Partner Center",
            System::Crm(Crm::Dynamics365) => "Dynamics 365",
            System::Crm(Crm::Salesforce) => "Salesforce",
        }
    }

    /// The stable code for storage, URLs and forms.
    pub fn as_code(self) -> &'static str {
        match self {
            System::PartnerCenter => "partner_center",
            System::Crm(Crm::Dynamics365) => "dynamics365",
            System::Crm(Crm::Salesforce) => "salesforce",
        }
    }

    pub fn from_code(code: &str) -> Option<System> {
        System::ALL.into_iter().find(|s| s.as_code() == code)
    }

    pub fn crm(self) -> Option<Crm> {
        match self {
            System::Crm(crm) => Some(crm),
            System::PartnerCenter => None,
        }
    }

    /// What the connecting account needs there (crm-apis.md §2.8, §3.11).
    pub(crate) fn required_role(self) -> &'static str {
        match self {
            System::PartnerCenter => "Referrals admin role",
            System::Crm(Crm::Dynamics365) => "System Administrator or System Customizer role",
            System::Crm(Crm::Salesforce) => "“Modify All Data” permission",
        }
    }
}

// Serialized as their codes (as stored rows and forms already say them).
impl Serialize for System {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_code())
    }
}

impl<'de> Deserialize<'de> for System {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<System, D::Error> {
        let code = String::deserialize(d)?;
        System::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown system {code:?}")))
    }
}

impl Serialize for Crm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_code())
    }
}

impl<'de> Deserialize<'de> for Crm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Crm, D::Error> {
        let code = String::deserialize(d)?;
        Crm::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown CRM {code:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_serialize_as_codes() {
        for s in System::ALL {
            assert_eq!(System::from_code(s.as_code()), Some(s));
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, s.as_code());
            assert_eq!(serde_json::from_value::<System>(json).unwrap(), s);
        }
        for c in Crm::ALL {
            assert_eq!(Crm::from_code(c.as_code()), Some(c));
            assert_eq!(System::from(c).crm(), Some(c));
        }
        assert_eq!(Crm::from_code("partner_center"), None);
        assert_eq!(System::PartnerCenter.crm(), None);
    }
}
