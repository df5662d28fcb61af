//! Integration tests: the real server on port 0, the sandbox emulators over HTTPS, a real database
//! (SQLite, or PostgreSQL when TEST_DATABASE_URL is set).

mod alerts;
mod authz;
mod both_crms;
mod budget;
mod charts;
mod connections;
mod crm;
mod crm_sync;
mod diagnostics;
mod diagnostics_records;
mod durability;
mod economy;
mod fault_matrix;
mod flows;
mod helpers;
mod live;
mod ops;
mod paused;
mod reconciliation;
mod runs;
mod salesforce;
mod sandbox_tls;
mod settings;
mod signin;
mod sync;
mod webhooks;
