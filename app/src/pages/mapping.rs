//! Mapping: how an opportunity's values become a referral's (sales stages, statuses, help requests,
//! currencies, solution ids), edited here rather than in code. "[Customize]" applies it on every run.

use crate::error::AppError;
use crate::layout::Gate;
use cosell::domain::Access;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingTableView {
    pub code: String,
    pub label: String,
    pub fallback: String,
    pub allowed: Option<Vec<String>>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingView {
    pub tables: Vec<MappingTableView>,
    /// Salesforce's "Sync Co-sell opportunity" setting applies (the CRM is Salesforce).
    pub leads_setting: bool,
    pub sync_leads: bool,
    /// The CRM's name, and its co-sell fields' names as `key = name` lines.
    pub crm: String,
    pub cosell_fields: String,
}

#[server(endpoint = "get_mapping")]
pub async fn get_mapping() -> Result<MappingView, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::mapping::Table;
    require(Access::Viewer).await?;
    let ctx = context()?;
    let mapping = ctx.engine.mapping().await.map_err(internal)?;
    let tables = Table::ALL
        .iter()
        .map(|t| MappingTableView {
            code: t.code().into(),
            label: t.label().into(),
            fallback: t.fallback().into(),
            allowed: t
                .allowed()
                .map(|a| a.iter().map(|s| s.to_string()).collect()),
            text: mapping.to_text(*t),
        })
        .collect();
    Ok(MappingView {
        tables,
        leads_setting: ctx.engine.crm() == cosell::domain::system::Crm::Salesforce,
        sync_leads: mapping.sync_leads,
        crm: ctx.engine.crm().label().into(),
        cosell_fields: ctx
            .engine
            .crm_port()
            .map(|p| p.cosell_fields().to_text())
            .unwrap_or_default(),
    })
}

/// Replaces the whole mapping; nothing changes unless every line of every table reads.
#[server(endpoint = "save_mapping")]
pub async fn save_mapping(
    stages: String,
    statuses: String,
    help: String,
    currencies: String,
    solutions: String,
    sync_leads: Option<String>,
    cosell_fields: Option<String>,
) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::mapping::Table;
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    let mut mapping = ctx.engine.mapping().await.map_err(internal)?;
    let mut problems = Vec::new();
    for (table, text) in [
        (Table::Stages, &stages),
        (Table::Statuses, &statuses),
        (Table::Help, &help),
        (Table::Currencies, &currencies),
        (Table::Solutions, &solutions),
    ] {
        if let Err(errors) = mapping.set_from_text(table, text) {
            problems.extend(errors.iter().map(|e| e.to_string()));
        }
    }
    let fields = match cosell_fields.as_deref() {
        None => None,
        Some(text) => {
            match cosell::engine::crm::cosell_fields::CoSellFields::parse(ctx.engine.crm(), text) {
                Ok(fields) => Some(fields),
                Err(e) => {
                    problems.push(format!("Co-sell fields: {e}."));
                    None
                }
            }
        }
    };
    if !problems.is_empty() {
        return Err(AppError::Invalid(format!(
            "Nothing was saved. {}",
            problems.join(" ")
        )));
    }
    mapping.sync_leads = sync_leads.is_some();
    ctx.engine
        .save_mapping(&mapping, fields, &me.name)
        .await
        .map_err(internal)?;
    Ok("Mapping saved: it applies from the next run.".into())
}

#[component]
pub fn MappingPage() -> impl IntoView {
    let save = ServerAction::<SaveMapping>::new();
    let tables = Resource::new(move || save.version().get(), |_| get_mapping());
    view! {
        <Gate needed=Access::Viewer title="Mapping" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            view! {
                <p>"How an opportunity's values become a referral's. One rule per line: "<code>"CRM value = Partner Center value"</code>". A value with no rule is sent as the fallback says."</p>
                <p>"When both sides changed the same referral, the CRM wins for the fields cosell maps from the opportunity (name, deal value, currency, closing date, solutions, team, help request, stage, status); every other field stays as Partner Center has it. The customer's location is never changed once the referral exists."</p>
                {move || crate::pages::action_result(save.value().get())}
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match tables.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(view) => view! {
                                <ActionForm action=save attr:class="mapping">
                                    {view.leads_setting.then(|| view! {
                                        <fieldset data-setting="sync_leads">
                                            <legend>"Leads"</legend>
                                            <label>
                                                <input type="checkbox" name="sync_leads" value="on"
                                                    checked=view.sync_leads disabled=!admin/>
                                                "Sync leads too (Salesforce's “Sync Co-sell opportunity” set to no)"
                                            </label>
                                            <p class="muted">"Off: only co-sell and pipeline-sharing deals from Partner Center become Salesforce opportunities. No effect in the other direction."</p>
                                        </fieldset>
                                    })}
                                    <fieldset data-table="cosell_fields">
                                        <legend>{format!("Co-sell fields in {}", view.crm)}</legend>
                                        <textarea name="cosell_fields" rows="6" cols="60" readonly=!admin
                                            aria-label="Co-sell fields">{view.cosell_fields.clone()}</textarea>
                                        <p class="muted">"The names your CRM gives the co-sell solution's fields, one "<code>"key = name"</code>" per line: sync, referral_id, referral_link, audit, help, solutions. Test the CRM connection after a change: it says which fields the CRM lacks."</p>
                                    </fieldset>
                                    {view.tables.into_iter().map(|t| view! {
                                        <fieldset data-table=t.code.clone()>
                                            <legend>{t.label.clone()}</legend>
                                            <textarea name=t.code.clone() rows="6" cols="60" readonly=!admin
                                                aria-label=t.label.clone()>{t.text.clone()}</textarea>
                                            <p class="muted">
                                                {format!("Unmapped values: {}.", t.fallback)}
                                                {t.allowed.map(|a| format!(" Partner Center values: {}.", a.join(", ")))}
                                            </p>
                                        </fieldset>
                                    }).collect_view()}
                                    {admin.then(|| view! { <button type="submit" class="primary">"Save the mapping"</button> })}
                                </ActionForm>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            }.into_any()
        }/>
    }
}
