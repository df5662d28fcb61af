//! Salesforce record ids: a three-character key prefix naming the object, twelve base-62 characters,
//! then the three-character case-safe suffix that turns the 15-character id into the 18-character one.

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// The sandbox org's pod, as the two characters after the key prefix.
const POD: &str = "5J";

/// The 18-character id of the `n`th record with this key prefix. Zero-padded base 62, so that ids of one
/// object sort in creation order.
pub(crate) fn make(prefix: &str, mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    let mut id = format!("{prefix}{POD}");
    id.extend(std::iter::repeat_n('0', 10 - digits.len()));
    id.extend(digits.iter().rev().map(|&b| b as char));
    with_suffix(&id)
}

/// Appends the case-safe suffix: one character per five, flagging which of them are upper case.
fn with_suffix(id15: &str) -> String {
    let bytes = id15.as_bytes();
    let mut id = id15.to_string();
    for chunk in bytes.chunks(5) {
        let flags = chunk
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_ascii_uppercase())
            .fold(0, |acc, (i, _)| acc | (1 << i));
        id.push(SUFFIX[flags] as char);
    }
    id
}

/// The 18-character form of a 15- or 18-character id; `None` when it is not a well-formed id (Salesforce
/// accepts both lengths wherever an id is expected).
pub(crate) fn normalize(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(with_suffix(id)),
        18 => {
            let full = with_suffix(&id[..15]);
            full.eq_ignore_ascii_case(id).then_some(full)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_a_case_safe_suffix() {
        // Salesforce's documented example pair.
        assert_eq!(with_suffix("001A0000006Vm9r"), "001A0000006Vm9rIAC");
        assert_eq!(make("006", 1), "0065J0000000001QAA");
        assert_eq!(normalize("0065J0000000001"), Some(make("006", 1)));
        assert_eq!(normalize("0065J0000000001QAB"), None);
        assert_eq!(normalize("not-an-id"), None);
        assert!(make("001", 62) > make("001", 61));
    }
}
