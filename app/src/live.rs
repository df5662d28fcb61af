//! Live pages in the browser: the server's `/events` stream says when something changed, and the pages
//! that show changing data (Overview, Runs, a run, Opportunities, an opportunity) read theirs again.
//! Without JavaScript nothing listens and a reload shows the same.

use leptos::prelude::*;

/// Counts the changes the server announced; a page's resource that reads it is fetched again on each.
#[derive(Clone, Copy)]
pub struct Live(RwSignal<u64>);

impl Live {
    pub fn provide() -> Live {
        let live = Live(RwSignal::new(0));
        provide_context(live);
        live
    }

    /// Starts listening (in the browser, once per page load). A signed-out visitor gets a 401, which
    /// closes the stream for good; a dropped connection is retried by the browser itself.
    #[cfg(feature = "hydrate")]
    pub fn listen(self) {
        use std::cell::Cell;
        use std::rc::Rc;
        use wasm_bindgen::{JsCast, closure::Closure};
        let Ok(source) = web_sys::EventSource::new("/events") else {
            return;
        };
        // A page is never redrawn under someone typing in a field: the change waits until they leave it.
        let typing = || {
            document()
                .active_element()
                .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
        };
        let held = Rc::new(Cell::new(false));
        let tick = self.0;
        let on_change = Closure::<dyn FnMut()>::new({
            let held = held.clone();
            move || {
                if typing() {
                    held.set(true);
                } else {
                    tick.update(|n| *n += 1);
                }
            }
        });
        let _ =
            source.add_event_listener_with_callback("changed", on_change.as_ref().unchecked_ref());
        let on_leave = Closure::<dyn FnMut()>::new(move || {
            if held.replace(false) {
                tick.update(|n| *n += 1);
            }
        });
        let _ = document()
            .add_event_listener_with_callback("focusout", on_leave.as_ref().unchecked_ref());
        // Both live as long as the page.
        on_change.forget();
        on_leave.forget();
        std::mem::forget(source);
    }
}

/// How many changes were announced so far: read it in a resource's source to follow them (always 0 on
/// the server, so the first render hydrates as it was sent).
pub fn changes() -> u64 {
    use_context::<Live>().map(|l| l.0.get()).unwrap_or(0)
}
