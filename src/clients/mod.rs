//! Clients of the outside world, one module per external API. They know no database.

pub mod partner_center;
