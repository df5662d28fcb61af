//! The landing page: who is signed in and what their role lets them do.

use crate::layout::Gate;
use cosell::domain::Access;
use leptos::prelude::*;

#[component]
pub fn OverviewPage() -> impl IntoView {
    view! {
        <Gate needed=Access::Viewer title="Overview" content=|me: crate::auth::Me| {
            let can = match me.user.access {
                Access::Admin => "You may change everything: connections, flows, mappings, and resubmitting runs.",
                _ => "You may read everything here; changes need the referrals admin role.",
            };
            view! {
                <section class="card" data-testid="identity">
                    <h2>"Signed in"</h2>
                    <dl>
                        <dt>"Name"</dt><dd>{me.user.name.clone()}</dd>
                        <dt>"Account"</dt><dd>{me.user.username.clone()}</dd>
                        <dt>"Role"</dt><dd data-testid="overview-role">{me.user.access.label()}</dd>
                        <dt>"Tenant"</dt><dd><code>{me.user.tenant_id.clone()}</code></dd>
                    </dl>
                    <p>{can}</p>
                </section>
            }.into_any()
        }/>
    }
}
