//! Numbers as the dashboard writes them.

/// Thousands separated, as the Overview writes the quota: 10,000.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        use super::thousands;
        assert_eq!(
            [0, 999, 1_000, 10_000, 1_234_567, -4_200].map(thousands),
            ["0", "999", "1,000", "10,000", "1,234,567", "-4,200"]
        );
    }
}
