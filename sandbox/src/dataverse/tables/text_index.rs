//! Rows by the text of each column, lowercased: a `$filter` equality the flows make (an account by
//! name, a contact by e-mail, an opportunity by referral id) finds its rows without reading the whole
//! table, as Dataverse's own indexes do — so a benchmark measures cosell, not an emulator slowing down
//! as its tables grow. Kept where rows are stored and removed ([`super::State::put`],
//! [`super::State::take`]); comparisons stay case-insensitive, as Dataverse's collation is.

use super::Row;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub(crate) struct TextIndex {
    /// Entity set → column → lowercased text → row ids.
    by: HashMap<&'static str, HashMap<&'static str, HashMap<String, BTreeSet<String>>>>,
}

impl TextIndex {
    pub fn add(&mut self, set: &'static str, id: &str, row: &Row) {
        for (column, value) in &row.values {
            if let Some(text) = value.as_str() {
                self.by
                    .entry(set)
                    .or_default()
                    .entry(column)
                    .or_default()
                    .entry(text.to_lowercase())
                    .or_default()
                    .insert(id.to_string());
            }
        }
    }

    pub fn remove(&mut self, set: &'static str, id: &str, row: &Row) {
        for (column, value) in &row.values {
            let texts = self.by.get_mut(set).and_then(|c| c.get_mut(column));
            let (Some(text), Some(texts)) = (value.as_str(), texts) else {
                continue;
            };
            let key = text.to_lowercase();
            if let Some(ids) = texts.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    texts.remove(&key);
                }
            }
        }
    }

    /// The ids of the rows of `set` whose `column` is one of `texts` (lowercased), in id order.
    pub fn ids(&self, set: &'static str, column: &str, texts: &[String]) -> BTreeSet<&str> {
        let Some(by_text) = self.by.get(set).and_then(|c| c.get(column)) else {
            return BTreeSet::new();
        };
        texts
            .iter()
            .filter_map(|t| by_text.get(t))
            .flatten()
            .map(String::as_str)
            .collect()
    }
}
