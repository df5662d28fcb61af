pub mod overview;
pub mod users;
