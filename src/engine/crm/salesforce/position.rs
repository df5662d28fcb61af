//! Where a `SystemModstamp` poll resumes. Each poll reads again a window before the newest stamp it saw
//! (a transaction may commit after a later one, with an earlier stamp); the rows already read in that
//! window are kept in the position (`id@stamp`), so a row read twice is reported once, and a row that
//! changed again inside the window (a new stamp) is reported again. Rows sharing a stamp are told apart
//! by id.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// The newest `SystemModstamp` read (`2026-11-30T14:05:09.000+0000`).
    pub stamp: String,
    /// (id, stamp) of the rows read within the window before `stamp`.
    seen: BTreeSet<(String, String)>,
}

impl Position {
    /// `{stamp}|{id@stamp;…}`; None when it is not one.
    pub fn parse(text: &str) -> Option<Position> {
        let (stamp, seen) = text.split_once('|')?;
        if stamp.len() < 19 {
            return None;
        }
        Some(Position {
            stamp: stamp.to_string(),
            seen: seen
                .split(';')
                .filter_map(|entry| entry.split_once('@'))
                .map(|(id, at)| (id.to_string(), at.to_string()))
                .collect(),
        })
    }

    /// Keeps the rows (id, stamp) this position has not read yet, and gives the position after them;
    /// `cutoff` turns a stamp into the oldest stamp the next poll reads again.
    pub fn advance(
        previous: Option<&Position>,
        rows: &[(String, String)],
        cutoff: impl Fn(&str) -> String,
    ) -> (Vec<usize>, Position) {
        let fresh: Vec<usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, row)| !previous.is_some_and(|p| p.seen.contains(row)))
            .map(|(i, _)| i)
            .collect();
        let stamp_of = |v: &str| stamp_of(v).to_string();
        let stamp = rows
            .iter()
            .map(|(_, v)| stamp_of(v))
            .chain(previous.map(|p| p.stamp.clone()))
            .max()
            .unwrap_or_default();
        let oldest = cutoff(&stamp);
        let seen = previous
            .into_iter()
            .flat_map(|p| p.seen.iter().cloned())
            .chain(rows.iter().cloned())
            .filter(|(_, at)| stamp_of(at) >= oldest)
            .collect();
        (fresh, Position { stamp, seen })
    }
}

/// A version's `SystemModstamp`: a version may carry a digest after it (`stamp#digest`).
fn stamp_of(version: &str) -> &str {
    version.split('#').next().unwrap_or_default()
}

/// Whether a record at version `earlier` was surely written before one at `later`: stamps are to the
/// second, in one ISO form, so only an earlier second is surely earlier.
pub(super) fn stamped_before(earlier: &str, later: &str) -> bool {
    let (a, b) = (stamp_of(earlier), stamp_of(later));
    !a.is_empty() && !b.is_empty() && a < b
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seen: Vec<String> = self
            .seen
            .iter()
            .map(|(id, at)| format!("{id}@{at}"))
            .collect();
        write!(f, "{}|{}", self.stamp, seen.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, at: &str) -> (String, String) {
        (id.into(), format!("2026-11-30T14:{at}.000+0000"))
    }

    /// Two minutes back, on the test stamps' minute:second.
    fn cutoff(stamp: &str) -> String {
        let minute: u32 = stamp[14..16].parse().unwrap();
        format!(
            "{}{:02}{}",
            &stamp[..14],
            minute.saturating_sub(2),
            &stamp[16..]
        )
    }

    #[test]
    fn only_an_earlier_second_is_surely_written_before() {
        let (a, b) = (row("a", "05:01").1, row("b", "05:02").1);
        assert!(stamped_before(&format!("{a}#00ff"), &format!("{b}#0001")));
        assert!(!stamped_before(&b, &a));
        assert!(
            !stamped_before(&format!("{a}#1"), &format!("{a}#2")),
            "one second"
        );
        assert!(!stamped_before("", &b));
    }

    #[test]
    fn rows_read_again_in_the_window_are_reported_once_and_a_new_change_again() {
        let first = [row("a", "05:00"), row("b", "05:00")];
        let (fresh, p1) = Position::advance(None, &first, cutoff);
        assert_eq!(fresh, [0, 1]);
        assert_eq!(p1.stamp, "2026-11-30T14:05:00.000+0000");
        // The next poll reads the window again: a and b once more, c committed late with an earlier
        // stamp, and b changed again.
        let second = [
            row("c", "04:30"),
            row("a", "05:00"),
            row("b", "05:00"),
            row("b", "06:00"),
        ];
        let (fresh, p2) = Position::advance(Some(&p1), &second, cutoff);
        assert_eq!(fresh, [0, 3], "c and b's new change");
        assert_eq!(p2.stamp, "2026-11-30T14:06:00.000+0000");
        // Round trip through its text; entries older than the window are dropped.
        let back = Position::parse(&p2.to_string()).unwrap();
        assert_eq!(back, p2);
        let (_, p3) = Position::advance(Some(&back), &[row("d", "09:00")], cutoff);
        assert_eq!(
            p3.to_string(),
            "2026-11-30T14:09:00.000+0000|d@2026-11-30T14:09:00.000+0000"
        );
        // Nothing new keeps the position.
        let (fresh, p4) = Position::advance(Some(&p3), &[], cutoff);
        assert!(fresh.is_empty());
        assert_eq!(p4, p3);
        assert_eq!(Position::parse("garbage"), None);
    }
}
