use crate::auth::whoami;
use crate::pages::{
    alerts::AlertsPage,
    audit::AuditPage,
    connections::ConnectionsPage,
    diagnostics::DiagnosticsPage,
    flows::FlowsPage,
    mapping::MappingPage,
    opportunities::{OpportunitiesPage, OpportunityPage},
    overview::OverviewPage,
    runs::{RunPage, RunsPage},
    settings::SettingsPage,
    users::UsersPage,
};
use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// The HTML document around the app (server only).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Who is signed in, fetched once per page load and shared by the layout and the pages.
#[derive(Clone, Copy)]
pub struct MeResource(pub Resource<Result<Option<crate::auth::Me>, crate::error::AppError>>);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(MeResource(Resource::new(|| (), |_| whoami())));
    let live = crate::live::Live::provide();
    // Effects run only in the browser, after hydration: the marker tells people and tests that the page
    // is live (JavaScript on) rather than a server-rendered document (JavaScript off).
    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
        #[cfg(feature = "hydrate")]
        live.listen();
        #[cfg(not(feature = "hydrate"))]
        let _ = live;
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/cosell.css"/>
        <Title text="cosell"/>
        <Router>
            // Async: the whole page is rendered before it is sent, so it reads the same without JavaScript.
            <Routes fallback=|| view! { <crate::layout::NotFound/> }>
                <Route path=path!("/") view=OverviewPage ssr=SsrMode::Async/>
                <Route path=path!("/connections") view=ConnectionsPage ssr=SsrMode::Async/>
                <Route path=path!("/flows") view=FlowsPage ssr=SsrMode::Async/>
                <Route path=path!("/opportunities") view=OpportunitiesPage ssr=SsrMode::Async/>
                <Route path=path!("/opportunities/:id") view=OpportunityPage ssr=SsrMode::Async/>
                <Route path=path!("/mapping") view=MappingPage ssr=SsrMode::Async/>
                <Route path=path!("/runs") view=RunsPage ssr=SsrMode::Async/>
                <Route path=path!("/runs/:id") view=RunPage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=AuditPage ssr=SsrMode::Async/>
                <Route path=path!("/diagnostics") view=DiagnosticsPage ssr=SsrMode::Async/>
                <Route path=path!("/alerts") view=AlertsPage ssr=SsrMode::Async/>
                <Route path=path!("/users") view=UsersPage ssr=SsrMode::Async/>
                <Route path=path!("/settings") view=SettingsPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
