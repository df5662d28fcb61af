//! Query results in batches: at most 2,000 records each, fewer with `Sforce-Query-Options:
//! batchSize=N`, the rest behind a `nextRecordsUrl` (`/services/data/vXX.X/query/01g…-2000`) that
//! clients follow verbatim until `done`.

use super::errors::SfError;
use super::ids;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};

/// Salesforce's largest (and default) batch.
pub(crate) const MAX_BATCH: usize = 2000;
/// `Sforce-Query-Options: batchSize` is honoured from 200 up (crm-apis.md §3.6, unconfirmed: smaller
/// values are raised to 200 rather than refused).
pub(crate) const MIN_BATCH: usize = 200;
/// Open query locators kept per org; the oldest is dropped beyond this (Salesforce also caps open
/// cursors per user).
const MAX_CURSORS: usize = 100;

/// The records of queries not yet read to the end.
#[derive(Default)]
pub(crate) struct Cursors {
    open: HashMap<String, (Vec<Value>, usize)>,
    order: VecDeque<String>,
    next: u64,
}

impl Cursors {
    pub(crate) fn first_page(
        &mut self,
        records: Vec<Value>,
        batch: usize,
        all_rows: bool,
        version: u32,
    ) -> Value {
        let batch = batch.clamp(MIN_BATCH, MAX_BATCH);
        if records.len() <= batch {
            return json!({ "totalSize": records.len(), "done": true, "records": records });
        }
        self.next += 1;
        let locator = ids::make("01g", self.next);
        let page = self.page(&locator, &records, 0, batch, all_rows, version);
        self.open.insert(locator.clone(), (records, batch));
        self.order.push_back(locator);
        if self.order.len() > MAX_CURSORS
            && let Some(old) = self.order.pop_front()
        {
            self.open.remove(&old);
        }
        page
    }

    fn page(
        &self,
        locator: &str,
        records: &[Value],
        from: usize,
        batch: usize,
        all_rows: bool,
        version: u32,
    ) -> Value {
        let to = (from + batch).min(records.len());
        let mut body = json!({ "totalSize": records.len(), "done": to == records.len(), "records": &records[from..to] });
        if to < records.len() {
            let kind = if all_rows { "queryAll" } else { "query" };
            body["nextRecordsUrl"] =
                json!(format!("/services/data/v{version}.0/{kind}/{locator}-{to}"));
        }
        body
    }

    /// `GET …/query/{locator}-{offset}`.
    pub(crate) fn more(&self, token: &str, all_rows: bool, version: u32) -> Result<Value, SfError> {
        let invalid = || SfError::bad("INVALID_QUERY_LOCATOR", "invalid query locator");
        let (locator, offset) = token.rsplit_once('-').ok_or_else(invalid)?;
        let offset: usize = offset.parse().map_err(|_| invalid())?;
        let (records, batch) = self.open.get(locator).ok_or_else(invalid)?;
        if offset >= records.len() {
            return Err(invalid());
        }
        Ok(self.page(locator, records, offset, *batch, all_rows, version))
    }
}
