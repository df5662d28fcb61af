//! Clients of the outside world, one module per external API. They know no database, and make one
//! attempt per call: retrying, counting and recording calls is the engine's business.

pub mod alert_channels;
pub mod dynamics;
pub mod entra;
pub mod http;
pub mod partner_center;
pub mod salesforce;
pub mod tls;
