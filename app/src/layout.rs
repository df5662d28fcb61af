//! The dashboard frame: header with navigation and the signed-in person, and the gate that decides what a
//! visitor sees — the sign-in invitation, the missing-role explanation, or the page.

use crate::auth::Me;
use crate::shell::MeResource;
use cosell::domain::{Access, RoleNames};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

/// Renders `content` for a signed-in user whose role allows `needed`; explains otherwise.
#[component]
pub fn Gate<F>(needed: Access, title: &'static str, content: F) -> impl IntoView
where
    F: Fn(Me) -> AnyView + Send + Sync + Clone + 'static,
{
    let me = expect_context::<MeResource>().0;
    let path = use_location().pathname;
    view! {
        <Title text=format!("{title} · cosell")/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let content = content.clone();
                Suspend::new(async move {
                    match me.await {
                        Err(e) => view! {
                            <Header me=None/>
                            <main><p class="error" role="alert">{e.to_string()}</p></main>
                        }.into_any(),
                        Ok(None) => view! {
                            <Header me=None/>
                            <main><SignedOut return_to=path.get_untracked()/></main>
                        }.into_any(),
                        Ok(Some(me)) if me.user.access == Access::NoRole => view! {
                            <Header me=Some(me.clone())/>
                            <main><NoRole me/></main>
                        }.into_any(),
                        Ok(Some(me)) if !me.user.access.allows(needed) => view! {
                            <Header me=Some(me.clone())/>
                            <main>
                                <h1>{title}</h1>
                                <p class="error" role="alert">
                                    {format!("This page needs the {} role; you are signed in as {}.", needed.label(), me.user.access.label())}
                                </p>
                            </main>
                        }.into_any(),
                        Ok(Some(me)) => view! {
                            <Header me=Some(me.clone())/>
                            <crate::pages::alerts::AlertBanner/>
                            <main><h1>{title}</h1>{content(me)}</main>
                        }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn Header(me: Option<Me>) -> impl IntoView {
    let has_role = me.as_ref().is_some_and(|m| m.user.access != Access::NoRole);
    view! {
        <header class="top">
            <a class="brand" href="/">"cosell"</a>
            {has_role.then(|| view! {
                <nav aria-label="Main">
                    <A href="/" exact=true>"Overview"</A>
                    <A href="/connections">"Connections"</A>
                    <A href="/flows">"Flows"</A>
                    <A href="/opportunities">"Opportunities"</A>
                    <A href="/mapping">"Mapping"</A>
                    <A href="/runs">"Runs"</A>
                    <A href="/audit">"Audit"</A>
                    <A href="/diagnostics">"Diagnostics"</A>
                    <A href="/alerts">"Alerts"</A>
                    <A href="/users">"Users"</A>
                    <A href="/settings">"Settings"</A>
                </nav>
            })}
            {me.map(|me| view! {
                <div class="who">
                    <span class="name" data-testid="signed-in-name">{me.user.name.clone()}</span>
                    <span class="role" data-testid="signed-in-role">{me.user.access.label()}</span>
                    <form method="post" action="/auth/sign-out">
                        <button type="submit" class="link">"Sign out"</button>
                    </form>
                </div>
            })}
        </header>
    }
}

#[component]
fn SignedOut(return_to: String) -> impl IntoView {
    let href = format!(
        "/auth/sign-in?return_to={}",
        crate::pages::encode(&return_to)
    );
    view! {
        <section class="card signin">
            <h1>"Sign in to cosell"</h1>
            <p>"cosell keeps Microsoft Partner Center co-sell referrals and your CRM opportunities in step. Sign in with your work account to continue."</p>
            // rel=external: a server route, not a page of the app, so no client-side navigation.
            <a class="button primary" href=href rel="external">"Sign in with Microsoft"</a>
        </section>
    }
}

#[component]
fn NoRole(me: Me) -> impl IntoView {
    let RoleNames { admin, viewer } = me.roles;
    view! {
        <section class="card" data-testid="no-role">
            <h1>"You don’t have a role in cosell yet"</h1>
            <p>
                "You are signed in as " <strong>{me.user.name}</strong> " (" {me.user.username} "), "
                "but your account holds neither of the app roles cosell uses, so there is nothing here you can see or change."
            </p>
            <h2>"What is missing"</h2>
            <p>"One of these app roles, assigned to you on cosell’s app registration in Microsoft Entra ID:"</p>
            <ul>
                <li><code>{admin}</code>" — referrals admin: connects systems, switches flows on and off, resubmits runs."</li>
                <li><code>{viewer}</code>" — viewer: sees everything, changes nothing."</li>
            </ul>
            <h2>"How to get it"</h2>
            <ol>
                <li>"Ask an Entra ID administrator (Cloud Application Administrator or higher) to open the Microsoft Entra admin center."</li>
                <li>"Enterprise applications → cosell → Users and groups → Add user/group: select you and the role."</li>
                <li>"Sign out and sign in again: cosell reads roles when you sign in."</li>
            </ol>
            <form method="post" action="/auth/sign-out">
                <button type="submit">"Sign out"</button>
            </form>
        </section>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found · cosell"/>
        <header class="top"><a class="brand" href="/">"cosell"</a></header>
        <main>
            <h1>"Page not found"</h1>
            <p>"There is no page at this address. " <a href="/">"Go to the overview"</a>"."</p>
        </main>
    }
}
