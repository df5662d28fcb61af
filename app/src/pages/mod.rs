pub mod connections;
pub mod flows;
pub mod overview;
pub mod users;

use time::OffsetDateTime;
use time::macros::format_description;

/// A moment as the dashboard shows it: to the minute, in UTC.
pub fn when(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}
