//! Integration tests: the real server on port 0, the sandbox emulators over HTTP, a real database
//! (SQLite, or PostgreSQL when TEST_DATABASE_URL is set).

mod authz;
mod both_crms;
mod connections;
mod crm_sync;
mod flows;
mod helpers;
mod ops;
mod runs;
mod salesforce;
mod signin;
mod sync;
mod webhooks;
