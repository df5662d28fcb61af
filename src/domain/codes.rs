//! ISO codes Partner Center insists on: ISO 3166-1 alpha-2 countries (`customerProfile.address.country`)
//! and ISO 4217 currencies (`details.currency`). Holding a [`CountryCode`] or [`CurrencyCode`] means the
//! code is real, not merely two or three capital letters.

use serde::{Deserialize, Serialize};
use std::fmt;

/// ISO 3166-1 alpha-2: the 249 officially assigned codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN \
BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG \
EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE \
IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD \
ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG \
PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Country names CRMs commonly hold in free-text country columns (Dataverse's `address1_country` is free
/// text), with their code: used to suggest the fix, never to guess silently.
const COUNTRY_NAMES: &[(&str, &str)] = &[
    ("united states", "US"),
    ("united states of america", "US"),
    ("usa", "US"),
    ("u.s.", "US"),
    ("u.s.a.", "US"),
    ("america", "US"),
    ("united kingdom", "GB"),
    ("uk", "GB"),
    ("great britain", "GB"),
    ("england", "GB"),
    ("scotland", "GB"),
    ("wales", "GB"),
    ("deutschland", "DE"),
    ("germany", "DE"),
    ("france", "FR"),
    ("españa", "ES"),
    ("spain", "ES"),
    ("italia", "IT"),
    ("italy", "IT"),
    ("nederland", "NL"),
    ("netherlands", "NL"),
    ("the netherlands", "NL"),
    ("holland", "NL"),
    ("belgium", "BE"),
    ("belgië", "BE"),
    ("belgique", "BE"),
    ("schweiz", "CH"),
    ("suisse", "CH"),
    ("switzerland", "CH"),
    ("österreich", "AT"),
    ("austria", "AT"),
    ("sverige", "SE"),
    ("sweden", "SE"),
    ("norge", "NO"),
    ("norway", "NO"),
    ("danmark", "DK"),
    ("denmark", "DK"),
    ("suomi", "FI"),
    ("finland", "FI"),
    ("ireland", "IE"),
    ("polska", "PL"),
    ("poland", "PL"),
    ("portugal", "PT"),
    ("canada", "CA"),
    ("mexico", "MX"),
    ("méxico", "MX"),
    ("brazil", "BR"),
    ("brasil", "BR"),
    ("argentina", "AR"),
    ("australia", "AU"),
    ("new zealand", "NZ"),
    ("japan", "JP"),
    ("china", "CN"),
    ("india", "IN"),
    ("singapore", "SG"),
    ("south korea", "KR"),
    ("korea", "KR"),
    ("south africa", "ZA"),
    ("united arab emirates", "AE"),
    ("uae", "AE"),
    ("israel", "IL"),
    ("turkey", "TR"),
    ("türkiye", "TR"),
];

/// ISO 4217 active currency codes (and funds codes), as of 2025.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL \
BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD \
FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW \
KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK \
NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC \
SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XDR \
XOF XPF XSU XUA YER ZAR ZMW ZWG";

/// A real ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The code, from a code typed in any case with spaces around; None when it is not an assigned code.
    pub fn parse(text: &str) -> Option<CountryCode> {
        let code = text.trim().to_ascii_uppercase();
        (code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)).then(|| {
            let b = code.as_bytes();
            CountryCode([b[0], b[1]])
        })
    }

    /// The code a country's name (as CRMs hold it) stands for, to suggest as a fix.
    pub fn suggest(name: &str) -> Option<CountryCode> {
        let name = name.trim().to_lowercase();
        COUNTRY_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, code)| CountryCode::parse(code))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CountryCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        CountryCode::parse(&s).ok_or_else(|| format!("{s:?} is not an ISO 3166 country code"))
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.as_str().to_string()
    }
}

/// A real ISO 4217 currency code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    pub fn parse(text: &str) -> Option<CurrencyCode> {
        let code = text.trim().to_ascii_uppercase();
        (code.len() == 3 && CURRENCIES.split(' ').any(|c| c == code)).then(|| {
            let b = code.as_bytes();
            CurrencyCode([b[0], b[1], b[2]])
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CurrencyCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        CurrencyCode::parse(&s).ok_or_else(|| format!("{s:?} is not an ISO 4217 currency code"))
    }
}

impl From<CurrencyCode> for String {
    fn from(c: CurrencyCode) -> String {
        c.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_lists_are_complete_and_well_formed() {
        let countries: Vec<&str> = COUNTRIES.split(' ').collect();
        assert_eq!(countries.len(), 249, "ISO 3166-1 assigns 249 codes");
        assert!(
            countries.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        let currencies: Vec<&str> = CURRENCIES.split(' ').collect();
        assert!(
            currencies.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        assert!(currencies.iter().all(|c| c.len() == 3));
        for (name, code) in COUNTRY_NAMES {
            assert!(CountryCode::parse(code).is_some(), "{name} → {code}");
        }
    }

    #[test]
    fn codes_parse_only_when_assigned() {
        assert_eq!(CountryCode::parse(" us ").unwrap().as_str(), "US");
        assert_eq!(CountryCode::parse("DE").unwrap().to_string(), "DE");
        for bad in ["UK", "XX", "USA", "U", "", "Deutschland"] {
            assert_eq!(CountryCode::parse(bad), None, "{bad}");
        }
        assert_eq!(CountryCode::suggest("Deutschland").unwrap().as_str(), "DE");
        assert_eq!(
            CountryCode::suggest(" United States ").unwrap().as_str(),
            "US"
        );
        assert_eq!(CountryCode::suggest("UK").unwrap().as_str(), "GB");
        assert_eq!(CountryCode::suggest("Atlantis"), None);
        assert_eq!(CurrencyCode::parse("usd").unwrap().as_str(), "USD");
        for bad in ["US$", "EURO", "ABC", ""] {
            assert_eq!(CurrencyCode::parse(bad), None, "{bad}");
        }
        let json = serde_json::to_string(&CountryCode::parse("fr").unwrap()).unwrap();
        assert_eq!(json, "\"FR\"");
        assert!(serde_json::from_str::<CurrencyCode>("\"XYZ\"").is_err());
    }
}
