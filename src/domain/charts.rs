//! The Overview's charts, as data: buckets along the time axis, stacked series, an optional limit line.
//! Built here from pre-aggregated counts (runs counted per hour as they end, API calls per day), so a
//! chart costs a few hundred rows whatever the number of runs; drawn by the dashboard as SVG.

use super::connection::System;
use super::flows::Flow;
use super::numbers::thousands;
use super::runs::{Direction, FailureCause, RunStatus};
use super::system::Crm;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};

/// Hours the syncs chart spans (7 days), and days the calls and failures charts span.
pub const SYNC_HOURS: usize = 7 * 24;
pub const CHART_DAYS: usize = 30;

/// One chart: `buckets` along the x axis (oldest first), each series a value per bucket, stacked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// Stable, for ids and tests: `syncs`, `calls-partner_center`, `calls-dynamics365`, `failures`.
    pub key: String,
    pub title: String,
    /// One sentence saying what the chart shows, in numbers (the SVG's description).
    pub summary: String,
    pub buckets: Vec<Bucket>,
    pub series: Vec<Series>,
    /// A line the bars are measured against (a daily budget).
    pub limit: Option<Limit>,
    /// The numbers, as the table under the chart gives them: a row per bucket that holds something,
    /// or per day for the hourly chart (168 rows would say less than 7).
    pub table: Vec<TableRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRow {
    pub label: String,
    /// One per series, in the chart's order.
    pub values: Vec<i64>,
}

/// Table rows from the buckets' `labels` (consecutive equal labels summed into one row), leaving out
/// the rows where every series is zero.
fn table_rows(labels: impl Iterator<Item = String>, series: &[Series]) -> Vec<TableRow> {
    let mut rows: Vec<TableRow> = Vec::new();
    for (i, label) in labels.enumerate() {
        let values = series.iter().map(|s| s.values[i]);
        match rows.last_mut() {
            Some(row) if row.label == label => {
                row.values.iter_mut().zip(values).for_each(|(a, b)| *a += b);
            }
            _ => rows.push(TableRow {
                label,
                values: values.collect(),
            }),
        }
    }
    rows.retain(|r| r.values.iter().any(|v| *v > 0));
    rows
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// In full, for the table and the bar's tooltip: "Sat 5 Dec 14:00" or "Sat 5 Dec".
    pub label: String,
    /// On the axis, where there is room for one (the first bucket of each day or of each week).
    pub tick: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// Stable, and the colour's class: `to-crm-succeeded`, `invalid`, `calls`…
    pub key: String,
    pub label: String,
    pub values: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub label: String,
    pub value: i64,
}

impl Chart {
    /// The stacked total of each bucket.
    pub fn totals(&self) -> Vec<i64> {
        (0..self.buckets.len())
            .map(|i| self.series.iter().map(|s| s.values[i]).sum())
            .collect()
    }
}

/// Runs of top-level flows that ended in one UTC hour, as the store counts them when they end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    /// The start of the hour, UTC.
    pub hour: OffsetDateTime,
    pub flow: Flow,
    pub status: RunStatus,
    /// Why, for failed runs.
    pub cause: Option<FailureCause>,
    pub runs: i64,
}

/// Which way a flow's runs carry a record, for flows that sync one (registration and reconciliation do
/// not: they count among the failures, not the syncs).
pub fn sync_direction(flow: Flow) -> Option<Direction> {
    match flow {
        Flow::PartnerCenterToCrm | Flow::ReferralUpdatesToCrm | Flow::Helper | Flow::Customize => {
            Some(Direction::ToCrm)
        }
        Flow::CrmToPartnerCenter
        | Flow::CreateReferral
        | Flow::OpportunityToPartnerCenter
        | Flow::SolutionsToPartnerCenter => Some(Direction::ToPartnerCenter),
        Flow::WebhookRegistration | Flow::Reconciliation => None,
    }
}

fn direction_label(direction: Direction, crm: Crm) -> String {
    match direction {
        Direction::ToCrm => format!("To {}", crm.label()),
        Direction::ToPartnerCenter => "To Partner Center".to_string(),
    }
}

/// The start of the UTC hour `at` falls in.
pub fn hour_of(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_time(Time::from_hms(at.hour(), 0, 0).expect("a whole hour"))
}

fn day_label(day: Date) -> String {
    format!(
        "{} {} {}",
        &day.weekday().to_string()[..3],
        day.day(),
        &day.month().to_string()[..3]
    )
}

/// Syncs per hour over the last 7 days up to `now`'s hour, by direction and outcome.
pub fn syncs_per_hour(counts: &[RunCount], crm: Crm, now: OffsetDateTime) -> Chart {
    let last = hour_of(now);
    let first = last - Duration::hours(SYNC_HOURS as i64 - 1);
    let buckets = (0..SYNC_HOURS)
        .map(|i| {
            let hour = first + Duration::hours(i as i64);
            let day = day_label(hour.date());
            Bucket {
                label: format!("{day} {:02}:00", hour.hour()),
                tick: (hour.hour() == 0).then_some(day),
            }
        })
        .collect();
    let outcomes = [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Skipped];
    let mut series: Vec<Series> = [Direction::ToCrm, Direction::ToPartnerCenter]
        .into_iter()
        .flat_map(|d| {
            outcomes.into_iter().map(move |o| Series {
                key: format!("{}-{}", d.as_code().replace('_', "-"), o.as_code()),
                label: format!("{} · {}", direction_label(d, crm), o.label().to_lowercase()),
                values: vec![0; SYNC_HOURS],
            })
        })
        .collect();
    let mut total = 0;
    for c in counts {
        let (Some(direction), Some(o)) = (
            sync_direction(c.flow),
            outcomes.iter().position(|s| *s == c.status),
        ) else {
            continue;
        };
        let Some(i) = index_of(c.hour, first, Duration::HOUR, SYNC_HOURS) else {
            continue;
        };
        let d = usize::from(direction == Direction::ToPartnerCenter);
        series[d * outcomes.len() + o].values[i] += c.runs;
        total += c.runs;
    }
    let failed: i64 = series
        .iter()
        .filter(|s| s.key.ends_with("-failed"))
        .flat_map(|s| &s.values)
        .sum();
    let table = table_rows(
        (0..SYNC_HOURS).map(|i| day_label((first + Duration::hours(i as i64)).date())),
        &series,
    );
    Chart {
        key: "syncs".into(),
        title: "Syncs per hour, last 7 days".into(),
        summary: format!(
            "{} in the last 7 days, {failed} of them failed.",
            counted(total, "sync", "syncs")
        ),
        buckets,
        series,
        limit: None,
        table,
    }
}

/// Which of `n` buckets of `step` from `first` holds `at`.
fn index_of(at: OffsetDateTime, first: OffsetDateTime, step: Duration, n: usize) -> Option<usize> {
    if at < first {
        return None;
    }
    let i = ((at - first).whole_seconds() / step.whole_seconds()) as usize;
    (i < n).then_some(i)
}

/// The 30 UTC days up to `now`'s, oldest first, with a tick on every seventh counting back from today.
fn last_days(now: OffsetDateTime) -> (Date, Vec<Bucket>) {
    let today = now.to_offset(time::UtcOffset::UTC).date();
    let first = today - Duration::days(CHART_DAYS as i64 - 1);
    let buckets = (0..CHART_DAYS)
        .map(|i| {
            let day = first + Duration::days(i as i64);
            let label = day_label(day);
            Bucket {
                tick: (CHART_DAYS - 1 - i)
                    .is_multiple_of(7)
                    .then(|| label.clone()),
                label,
            }
        })
        .collect();
    (first, buckets)
}

fn day_index(day: Date, first: Date) -> Option<usize> {
    let i = (day - first).whole_days();
    (0..CHART_DAYS as i64).contains(&i).then_some(i as usize)
}

/// API calls per UTC day over the last 30 days with one connection, against its daily budget.
pub fn calls_per_day(
    system: System,
    calls: &[(Date, i64)],
    quota: Option<i64>,
    now: OffsetDateTime,
) -> Chart {
    let (first, buckets) = last_days(now);
    let mut values = vec![0; CHART_DAYS];
    for (day, n) in calls {
        if let Some(i) = day_index(*day, first) {
            values[i] += n;
        }
    }
    let total: i64 = values.iter().sum();
    let busiest = values.iter().copied().max().unwrap_or(0);
    let label = system.label();
    let summary = match quota {
        Some(q) => format!(
            "{} to {label} in the last 30 days; the busiest day used {} of its daily budget of {}.",
            counted(total, "call", "calls"),
            thousands(busiest),
            thousands(q)
        ),
        None => format!(
            "{} to {label} in the last 30 days; the busiest day made {}.",
            counted(total, "call", "calls"),
            thousands(busiest)
        ),
    };
    let series = vec![Series {
        key: "calls".into(),
        label: "API calls".into(),
        values,
    }];
    Chart {
        table: table_rows(buckets.iter().map(|b| b.label.clone()), &series),
        key: format!("calls-{}", system.as_code()),
        title: format!("API calls to {label} per day, last 30 days"),
        summary,
        buckets,
        series,
        limit: quota.map(|value| Limit {
            label: format!("Daily budget: {}", thousands(value)),
            value,
        }),
    }
}

/// Failed runs (top-level, of any flow) per UTC day over the last 30 days, by cause.
pub fn failures_per_day(counts: &[RunCount], now: OffsetDateTime) -> Chart {
    let (first, buckets) = last_days(now);
    let mut series: Vec<Series> = FailureCause::ALL
        .iter()
        .map(|c| Series {
            key: c.as_code().to_string(),
            label: c.label().to_string(),
            values: vec![0; CHART_DAYS],
        })
        .collect();
    for c in counts.iter().filter(|c| c.status == RunStatus::Failed) {
        let cause = c.cause.unwrap_or(FailureCause::Other);
        let Some(i) = day_index(c.hour.date(), first) else {
            continue;
        };
        let s = FailureCause::ALL
            .iter()
            .position(|x| *x == cause)
            .unwrap_or(0);
        series[s].values[i] += c.runs;
    }
    let total: i64 = series.iter().flat_map(|s| &s.values).sum();
    let top = series
        .iter()
        .map(|s| (s.values.iter().sum::<i64>(), &s.label))
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, _)| *n);
    let summary = match top {
        None => "No run failed in the last 30 days.".to_string(),
        Some((n, label)) => format!(
            "{} failed in the last 30 days; the commonest cause, {}: {n}.",
            counted(total, "run", "runs"),
            label.to_lowercase()
        ),
    };
    Chart {
        key: "failures".into(),
        title: "Failed runs per day by cause, last 30 days".into(),
        summary,
        table: table_rows(buckets.iter().map(|b| b.label.clone()), &series),
        buckets,
        series,
        limit: None,
    }
}

fn counted(n: i64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// The hour a count is kept under: `YYYY-MM-DD HH`, UTC (the store's key, readable in SQL).
pub fn hour_key(hour: OffsetDateTime) -> String {
    let h = hour_of(hour);
    format!("{} {:02}", h.date(), h.hour())
}

/// The start of the hour a key names.
pub fn parse_hour_key(key: &str) -> Option<OffsetDateTime> {
    let (day, hour) = key.split_once(' ')?;
    let day = Date::parse(
        day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let hour = Time::from_hms(hour.parse().ok()?, 0, 0).ok()?;
    Some(PrimitiveDateTime::new(day, hour).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-05 14:37 UTC);

    fn count(hour: OffsetDateTime, flow: Flow, status: RunStatus, runs: i64) -> RunCount {
        RunCount {
            hour,
            flow,
            status,
            cause: (status == RunStatus::Failed).then_some(FailureCause::Unavailable),
            runs,
        }
    }

    #[test]
    fn syncs_fall_in_their_hour_and_direction_and_older_ones_are_left_out() {
        let counts = [
            count(
                datetime!(2026-12-05 14:00 UTC),
                Flow::PartnerCenterToCrm,
                RunStatus::Succeeded,
                3,
            ),
            count(
                datetime!(2026-12-05 14:00 UTC),
                Flow::CrmToPartnerCenter,
                RunStatus::Failed,
                1,
            ),
            count(
                datetime!(2026-11-28 15:00 UTC),
                Flow::PartnerCenterToCrm,
                RunStatus::Skipped,
                2,
            ),
            // Outside the window, and flows that sync nothing: not syncs.
            count(
                datetime!(2026-11-28 14:00 UTC),
                Flow::PartnerCenterToCrm,
                RunStatus::Succeeded,
                9,
            ),
            count(
                datetime!(2026-12-05 14:00 UTC),
                Flow::Reconciliation,
                RunStatus::Succeeded,
                9,
            ),
        ];
        let chart = syncs_per_hour(&counts, Crm::Dynamics365, NOW);
        assert_eq!(chart.buckets.len(), 168);
        assert_eq!(chart.buckets[0].label, "Sat 28 Nov 15:00");
        assert_eq!(chart.buckets[167].label, "Sat 5 Dec 14:00");
        let series = |key: &str| chart.series.iter().find(|s| s.key == key).unwrap();
        assert_eq!(series("to-crm-succeeded").values[167], 3);
        assert_eq!(series("to-partner-center-failed").values[167], 1);
        assert_eq!(series("to-crm-skipped").values[0], 2);
        assert_eq!(
            series("to-crm-succeeded").label,
            "To Dynamics 365 · succeeded"
        );
        assert_eq!(chart.totals().iter().sum::<i64>(), 6);
        assert_eq!(
            chart.summary,
            "6 syncs in the last 7 days, 1 of them failed."
        );
        // The table sums the hours per day.
        let days: Vec<_> = chart
            .table
            .iter()
            .map(|r| (r.label.as_str(), r.values.iter().sum::<i64>()))
            .collect();
        assert_eq!(days, [("Sat 28 Nov", 2), ("Sat 5 Dec", 4)]);
        // A tick on each midnight.
        assert_eq!(chart.buckets.iter().filter(|b| b.tick.is_some()).count(), 7);
    }

    #[test]
    fn calls_are_measured_against_the_quota_day_by_day() {
        let calls = [
            (datetime!(2026-12-05 00:00 UTC).date(), 120),
            (datetime!(2026-11-06 00:00 UTC).date(), 7),
            (datetime!(2026-11-05 00:00 UTC).date(), 999),
        ];
        let chart = calls_per_day(System::PartnerCenter, &calls, Some(10_000), NOW);
        assert_eq!(chart.buckets.len(), 30);
        assert_eq!(chart.series[0].values[29], 120);
        assert_eq!(chart.series[0].values[0], 7);
        assert_eq!(
            chart.summary,
            "127 calls to Partner Center in the last 30 days; the busiest day used 120 of its daily budget of 10,000."
        );
        assert_eq!(chart.limit.unwrap().value, 10_000);
    }

    #[test]
    fn failures_are_grouped_by_day_and_cause() {
        let mut invalid = count(
            datetime!(2026-12-04 09:00 UTC),
            Flow::CrmToPartnerCenter,
            RunStatus::Failed,
            2,
        );
        invalid.cause = Some(FailureCause::Data);
        let counts = [
            invalid,
            count(
                datetime!(2026-12-04 23:00 UTC),
                Flow::WebhookRegistration,
                RunStatus::Failed,
                1,
            ),
            count(
                datetime!(2026-12-05 01:00 UTC),
                Flow::PartnerCenterToCrm,
                RunStatus::Failed,
                4,
            ),
            count(
                datetime!(2026-12-05 01:00 UTC),
                Flow::PartnerCenterToCrm,
                RunStatus::Succeeded,
                50,
            ),
        ];
        let chart = failures_per_day(&counts, NOW);
        let series = |key: &str| chart.series.iter().find(|s| s.key == key).unwrap();
        assert_eq!(series("data").values[28], 2);
        assert_eq!(series("unavailable").values[28], 1);
        assert_eq!(series("unavailable").values[29], 4);
        assert_eq!(chart.totals().iter().sum::<i64>(), 7);
        assert!(
            chart.summary.starts_with("7 runs failed"),
            "{}",
            chart.summary
        );
        assert_eq!(
            failures_per_day(&[], NOW).summary,
            "No run failed in the last 30 days."
        );
    }

    #[test]
    fn hour_keys_read_back() {
        let at = datetime!(2026-12-05 09:59:59.5 UTC);
        assert_eq!(hour_key(at), "2026-12-05 09");
        assert_eq!(
            parse_hour_key("2026-12-05 09"),
            Some(datetime!(2026-12-05 09:00 UTC))
        );
        assert_eq!(parse_hour_key("yesterday"), None);
    }
}
