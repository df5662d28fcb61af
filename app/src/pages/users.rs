//! People who have signed in, and "sign out everywhere" for one of them (admins only).

use super::when;
use crate::error::AppError;
use crate::layout::Gate;
use cosell::domain::{Access, UserSummary};
use leptos::prelude::*;

#[server(endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    use crate::auth::server::{context, internal, require};
    require(Access::Viewer).await?;
    context()?.store.list_users(500).await.map_err(internal)
}

/// Ends every current session of one person. They stay able to sign in again.
#[server(endpoint = "end_sessions")]
pub async fn end_sessions(tenant_id: String, object_id: String) -> Result<(), AppError> {
    use crate::auth::server::{context, internal, require};
    let me = require(Access::Admin).await?;
    if tenant_id.trim().is_empty() || object_id.trim().is_empty() {
        return Err(AppError::Invalid("Pick a person from the list.".into()));
    }
    let found = context()?
        .store
        .revoke_sessions(&tenant_id, &object_id, time::OffsetDateTime::now_utc())
        .await
        .map_err(internal)?;
    if !found {
        return Err(AppError::Invalid(
            "That person has never signed in here, so there is nothing to end.".into(),
        ));
    }
    tracing::info!(by = %me.object_id, user = %object_id, "sessions ended");
    Ok(())
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let end = ServerAction::<EndSessions>::new();
    let users = Resource::new(move || end.version().get(), |_| list_users());
    view! {
        <Gate needed=Access::Viewer title="Users" content=move |me: crate::auth::Me| {
            let is_admin = me.user.access == Access::Admin;
            view! {
                <p>"Everyone who has signed in to this dashboard, most recent first. Roles are read from Entra ID at each sign-in."</p>
                {move || end.value().get().and_then(|r| r.err()).map(|e| view! {
                    <p class="error" role="alert">{e.to_string()}</p>
                })}
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match users.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(list) => view! {
                                <table class="list" data-testid="users" aria-label="People who have signed in">
                                    <thead><tr>
                                        <th scope="col">"Name"</th><th scope="col">"Account"</th><th scope="col">"Role"</th>
                                        <th scope="col">"Last sign-in"</th><th scope="col">"Sessions"</th>
                                    </tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|u| view! {
                                            <tr data-user=u.username.clone()>
                                                <td data-label="Name">{u.name.clone()}</td>
                                                <td data-label="Account">{u.username.clone()}</td>
                                                <td data-label="Role">{u.access.label()}</td>
                                                <td data-label="Last sign-in">{when(u.last_sign_in_at)}</td>
                                                <td data-label="Sessions">
                                                    {u.sessions_revoked_at.map(|at| format!("Ended {}", when(at)))}
                                                    {is_admin.then(|| view! {
                                                        <ActionForm action=end attr:class="inline">
                                                            <input type="hidden" name="tenant_id" value=u.tenant_id.clone()/>
                                                            <input type="hidden" name="object_id" value=u.object_id.clone()/>
                                                            <button type="submit" aria-label=format!("Sign out {} everywhere", u.name)>"Sign out everywhere"</button>
                                                        </ActionForm>
                                                    })}
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            }.into_any()
        }/>
    }
}
