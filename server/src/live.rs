//! `GET /events`: live pages. A server-sent event stream that tells a signed-in person's open page
//! "something changed" (a run queued, claimed or ended, an audit event, an opportunity seen, progress),
//! so the page reads its data again. The stream carries no data of its own: what the page then reads
//! goes through the server functions and their role checks.
//!
//! One task per instance asks the store for its [`ActivityMark`] once a second, and only while someone
//! listens; the mark is read from the database, so runs other instances work on show up too.

use crate::startup::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cosell::domain::{Access, SignedInUser};
use cosell::store::{ActivityMark, Store};
use cosell_app::auth::server::SESSION_USER;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::watch;
use tower_sessions::Session;

/// How often the store is asked while someone listens.
pub const LIVE_EVERY: Duration = Duration::from_secs(1);

/// The latest mark, and whether the server is closing (open streams end so shutdown is not held up).
#[derive(Clone)]
pub struct Live {
    marks: watch::Sender<ActivityMark>,
    closing: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Live {
        Live {
            marks: watch::Sender::new(ActivityMark::default()),
            closing: watch::Sender::new(false),
        }
    }
}

impl Live {
    /// Asks `store` every `every` while anyone listens, until the server closes.
    pub fn spawn_watch(&self, store: Store, every: Duration) {
        let live = self.clone();
        let mut closing = self.closing.subscribe();
        tokio::spawn(async move {
            loop {
                if *closing.borrow() {
                    break;
                }
                if live.marks.receiver_count() > 0 {
                    match store.activity_mark().await {
                        Ok(mark) => {
                            live.marks.send_if_modified(|last| {
                                let changed = *last != mark;
                                *last = mark;
                                changed
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "live pages: could not read the store")
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = closing.changed() => {}
                }
            }
        });
    }

    /// Ends every open stream: the server is shutting down.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

async fn events(State(app): State<AppState>, session: Session) -> Response {
    let user: Option<SignedInUser> = session.get(SESSION_USER).await.ok().flatten();
    let Some(user) = user else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match app.store.is_session_revoked(&user).await {
        Ok(false) => {}
        Ok(true) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "live pages: could not check the session");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    if !user.access.allows(Access::Viewer) {
        return StatusCode::FORBIDDEN.into_response();
    }
    // While nobody listened the mark was not kept: bring it up to date without telling anyone, so that
    // this page (just loaded) hears only what changes from now on.
    if app.live.marks.receiver_count() == 0
        && let Ok(mark) = app.store.activity_mark().await
    {
        app.live.marks.send_if_modified(|last| {
            *last = mark;
            false
        });
    }
    let mut marks = app.live.marks.subscribe();
    marks.mark_unchanged();
    let closing = app.live.closing.subscribe();
    let stream = futures::stream::unfold((marks, closing), |(mut marks, mut closing)| async move {
        if *closing.borrow() {
            return None;
        }
        tokio::select! {
            changed = marks.changed() => changed.ok()?,
            _ = closing.changed() => return None,
        }
        // The mark itself (browsers drop an event without data): which state the page is told about.
        let mark = marks.borrow_and_update().to_string();
        let event = Event::default().event("changed").data(mark);
        Some((Ok::<Event, Infallible>(event), (marks, closing)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
