//! The flows' decisions, each against an in-memory fake of the CRM port (no vendor, no network): create
//! or update, a conflict on the CRM side, a closed referral, an unknown CRM id, an opportunity that is
//! not ready, and the echo of cosell's own write. Partner Center is never reached here: its address is
//! a closed port, so a flow that tried to call it would fail the test.

use super::context::{RunContext, StepError};
use super::crm::CrmError;
use super::crm::fake::FakeCrm;
use super::retry::RetryPolicy;
use super::tokens::TokenSource;
use super::{Endpoints, Engine};
use crate::clients::entra::EntraClient;
use crate::clients::tls::TlsTrust;
use crate::crypto::{SealingKey, Secret};
use crate::domain::flows::Flow;
use crate::domain::opportunity::{Customer, Opportunity, OpportunityState, Person};
use crate::domain::referral::{OpportunityDraft, Referral};
use crate::domain::runs::{AuditAction, RunStatus, RunTrigger};
use crate::domain::system::Crm;
use crate::store::test_support::TestDatabase;
use crate::store::{AuditFilter, NewRun, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Nothing listens here: a call to Partner Center fails at once.
const NOWHERE: &str = "http://127.0.0.1:9";

struct Bench {
    _db: TestDatabase,
    engine: Arc<Engine>,
    fake: Arc<FakeCrm>,
}

impl Bench {
    async fn new(fake: FakeCrm) -> Bench {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let entra = EntraClient::new(
            NOWHERE,
            "client",
            &Secret::new("secret"),
            NOWHERE,
            &TlsTrust::public_roots(),
        )
        .unwrap();
        let tokens = Arc::new(TokenSource::new(
            store.clone(),
            SealingKey::generate(),
            entra,
        ));
        let endpoints = Endpoints {
            partner_center_api: NOWHERE.into(),
            partner_center_webhooks_api: NOWHERE.into(),
            dynamics_resource: None,
            dynamics_api: None,
            dynamics_columns: super::crm::cosell_fields::CoSellFields::dynamics(),
            crm: Crm::Dynamics365,
            salesforce_fields: super::crm::cosell_fields::CoSellFields::salesforce(),
            tls: TlsTrust::public_roots(),
        };
        let fake = Arc::new(fake);
        let policy = RetryPolicy {
            call_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let engine = Engine::with_crm(
            store,
            tokens,
            endpoints,
            policy,
            Crm::Dynamics365,
            Some(fake.clone()),
        )
        .unwrap();
        Bench {
            _db: db,
            engine,
            fake,
        }
    }

    /// A run of `flow` to record steps and audit events in.
    async fn run(&self, flow: Flow, record: &str) -> RunContext<'_> {
        let now = time::OffsetDateTime::now_utc();
        let run = self
            .engine
            .store
            .start_run(
                &NewRun {
                    flow,
                    trigger: RunTrigger::Manual,
                    input: crate::domain::runs::RunInput::referral(record),
                    record_id: Some(record.into()),
                    parent_run_id: None,
                    resubmitted_from: None,
                    settled: None,
                },
                "test",
                now + time::Duration::minutes(5),
                now,
            )
            .await
            .unwrap();
        RunContext::new(
            &self.engine,
            run.id,
            flow,
            "test",
            Some(record.into()),
            "engine",
            Default::default(),
        )
    }

    /// Switches on every flow of the catalog but `except`, as an admin would have.
    async fn flows_on_except(&self, except: &[Flow]) {
        let flows: Vec<Flow> = crate::domain::flows::activation_order(Crm::Dynamics365)
            .into_iter()
            .filter(|f| !except.contains(f))
            .collect();
        self.engine
            .store
            .set_flows_active(
                Crm::Dynamics365,
                &flows,
                true,
                "test",
                time::OffsetDateTime::now_utc(),
                |_, _| Ok::<(), ()>(()),
            )
            .await
            .unwrap()
            .unwrap();
    }

    /// A seller's edit in the CRM: a new version cosell did not write.
    fn seller_edits(&self, id: &str, version: &str, edit: impl FnOnce(&mut Opportunity)) {
        let mut s = self.fake.lock();
        let o = s.opportunities.get_mut(id).unwrap();
        edit(o);
        o.version = Some(version.into());
    }

    async fn flow_of(&self, run: i64) -> Flow {
        self.engine.store.run(run).await.unwrap().unwrap().flow
    }

    async fn actions(&self, record: &str) -> Vec<String> {
        let mut events = self
            .engine
            .store
            .list_audit(&AuditFilter::record(record), None, 100)
            .await
            .unwrap();
        events.reverse();
        events.into_iter().map(|e| e.action).collect()
    }
}

fn referral(id: &str) -> Referral {
    serde_json::from_value(json!({
        "id": id, "name": "Azure migration", "status": "Active", "substatus": "Accepted", "eTag": "\"1\"",
        "customerProfile": { "name": "Fabrikam", "address": { "postalCode": "98101", "country": "US" },
                             "team": [{ "firstName": "Ray", "lastName": "Tanaka", "email": "ray@f.example" }] },
        "details": { "dealValue": 25000, "currency": "USD", "closingDateTime": "2027-03-31T00:00:00Z" }
    }))
    .unwrap()
}

fn with_usd(s: &mut super::crm::fake::State) {
    s.currencies.insert("USD".into(), "usd-id".into());
}

/// The opportunity a referral made earlier, as the CRM holds it.
fn made_from(r: &Referral, id: &str) -> Opportunity {
    let d = OpportunityDraft::of(r);
    Opportunity {
        id: id.into(),
        name: d.name,
        sync: true,
        referral_id: Some(d.referral_id),
        referral_link: Some(d.referral_link),
        deal_value: d.deal_value,
        closing_date: d.closing_date,
        account_id: Some("account-0".into()),
        currency_id: Some("usd-id".into()),
        version: Some("1".into()),
        ..Default::default()
    }
}

/// An opportunity shared earlier as referral `referral_id` (or not yet, without one), sync on.
fn linked(id: &str, referral_id: Option<&str>) -> Opportunity {
    let mut o = made_from(&referral(referral_id.unwrap_or("ref-0")), id);
    o.referral_id = referral_id.map(str::to_string);
    o.referral_link = referral_id.map(crate::domain::referral::link_for);
    o.solutions = vec!["SOL-1".into()];
    o.owner_id = Some("user-1".into());
    o
}

mod partner_center_to_crm {
    use super::super::partner_center_to_crm::{Synced, into_crm};
    use super::*;

    #[tokio::test]
    async fn a_new_referral_creates_account_contact_and_opportunity() {
        let bench = Bench::new(FakeCrm::with(with_usd)).await;
        let ctx = bench.run(Flow::PartnerCenterToCrm, "ref-1").await;
        let synced = into_crm(&ctx, bench.fake.as_ref(), &referral("ref-1"))
            .await
            .unwrap();
        let Synced::To(id) = synced else {
            panic!("{synced:?}")
        };
        {
            let s = bench.fake.lock();
            let o = &s.opportunities[&id];
            assert_eq!(o.referral_id.as_deref(), Some("ref-1"));
            assert_eq!(o.currency_id.as_deref(), Some("usd-id"));
            assert!(o.sync);
            assert_eq!(s.accounts.len(), 1);
            assert_eq!(s.contacts.len(), 1);
        }
        let runs = bench.engine.store.related_runs(ctx.run_id()).await.unwrap();
        assert_eq!(
            runs.iter().map(|r| r.flow).collect::<Vec<_>>(),
            [Flow::Helper, Flow::ReferralUpdatesToCrm]
        );
    }

    #[tokio::test]
    async fn salesforce_has_no_helper_flow_and_its_updates_flow_matches_the_account() {
        let mut fake = FakeCrm::with(with_usd);
        fake.plays = Some(Crm::Salesforce);
        let bench = Bench::new(fake).await;
        let ctx = bench.run(Flow::PartnerCenterToCrm, "ref-8").await;
        let synced = into_crm(&ctx, bench.fake.as_ref(), &referral("ref-8"))
            .await
            .unwrap();
        assert!(matches!(synced, Synced::To(_)), "{synced:?}");
        assert_eq!(bench.fake.lock().accounts.len(), 1);
        let runs = bench.engine.store.related_runs(ctx.run_id()).await.unwrap();
        assert_eq!(
            runs.iter().map(|r| r.flow).collect::<Vec<_>>(),
            [Flow::ReferralUpdatesToCrm]
        );
    }

    #[tokio::test]
    async fn a_known_referral_updates_only_what_changed_and_nothing_when_nothing_did() {
        let r = referral("ref-2");
        let bench = Bench::new(FakeCrm::with(|s| {
            with_usd(s);
            s.accounts.insert(
                "account-0".into(),
                Customer {
                    id: "account-0".into(),
                    name: "Fabrikam".into(),
                    postal_code: Some("98101".into()),
                    ..Default::default()
                },
            );
            s.contacts.insert(
                "contact-0".into(),
                Person {
                    email: Some("ray@f.example".into()),
                    ..Default::default()
                },
            );
            s.opportunities
                .insert("opp-2".into(), made_from(&r, "opp-2"));
        }))
        .await;
        let ctx = bench.run(Flow::PartnerCenterToCrm, "ref-2").await;
        // Unchanged: no write at all.
        assert_eq!(
            into_crm(&ctx, bench.fake.as_ref(), &r).await.unwrap(),
            Synced::To("opp-2".into())
        );
        assert!(!bench.fake.wrote(), "{:?}", bench.fake.log());
        assert!(
            bench
                .actions("opp-2")
                .await
                .contains(&"opportunity_unchanged".to_string())
        );
        // The seller in Partner Center raises the deal value: one update, of that field only.
        let mut raised = r.clone();
        raised.details.deal_value = Some(30000.0);
        into_crm(&ctx, bench.fake.as_ref(), &raised).await.unwrap();
        let log = bench.fake.log();
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("update"))
                .collect::<Vec<_>>(),
            ["update opp-2 deal value"]
        );
        assert_eq!(
            bench.fake.lock().opportunities["opp-2"].deal_value,
            Some(30000.0)
        );
    }

    #[tokio::test]
    async fn a_conflict_in_the_crm_is_tried_again_later_without_overwriting() {
        let r = referral("ref-3");
        let bench = Bench::new(FakeCrm::with(|s| {
            with_usd(s);
            let mut o = made_from(&r, "opp-3");
            o.name = "Renamed by a seller".into();
            s.opportunities.insert("opp-3".into(), o);
            s.fail_next_update = Some(CrmError::Conflict("changed meanwhile".into()));
        }))
        .await;
        let ctx = bench.run(Flow::PartnerCenterToCrm, "ref-3").await;
        let e = into_crm(&ctx, bench.fake.as_ref(), &r).await.unwrap_err();
        assert!(
            matches!(&e, StepError::Transient(m, None) if m.contains("changed in Dynamics 365")),
            "{e:?}"
        );
        assert_eq!(
            bench.fake.lock().opportunities["opp-3"].name,
            "Renamed by a seller"
        );
        assert!(
            !bench
                .actions("opp-3")
                .await
                .contains(&"opportunity_updated".to_string())
        );
    }

    #[tokio::test]
    async fn a_closed_referral_without_opportunity_creates_none_and_one_with_closes_it() {
        let mut won = referral("ref-4");
        won.status = "Closed".into();
        won.substatus = "Won".into();
        let bench = Bench::new(FakeCrm::with(with_usd)).await;
        let ctx = bench.run(Flow::PartnerCenterToCrm, "ref-4").await;
        let synced = into_crm(&ctx, bench.fake.as_ref(), &won).await.unwrap();
        assert!(
            matches!(&synced, Synced::Skipped(why) if why.contains("closed")),
            "{synced:?}"
        );
        assert!(!bench.fake.wrote(), "{:?}", bench.fake.log());
        assert_eq!(bench.actions("ref-4").await, ["referral_skipped_closed"]);

        let open = referral("ref-4");
        bench
            .fake
            .lock()
            .opportunities
            .insert("opp-4".into(), made_from(&open, "opp-4"));
        into_crm(&ctx, bench.fake.as_ref(), &won).await.unwrap();
        assert_eq!(
            bench.fake.lock().opportunities["opp-4"].state,
            OpportunityState::Won
        );
    }

    #[tokio::test]
    async fn an_unknown_crm_id_is_ignored_and_audited() {
        let mut r = referral("ref-5");
        r.external_reference_id = Some("no-such-opportunity".into());
        let bench = Bench::new(FakeCrm::with(with_usd)).await;
        let ctx = bench.run(Flow::PartnerCenterToCrm, "ref-5").await;
        let synced = into_crm(&ctx, bench.fake.as_ref(), &r).await.unwrap();
        assert!(
            matches!(&synced, Synced::Skipped(why) if why.contains("does not exist in Dynamics 365")),
            "{synced:?}"
        );
        assert!(!bench.fake.wrote());
        assert_eq!(
            bench.actions("ref-5").await,
            [AuditAction::ReferralIgnoredUnknownCrmId.as_code()]
        );
    }
}

mod crm_to_partner_center {
    use super::*;

    #[tokio::test]
    async fn an_opportunity_that_fails_a_rule_costs_no_partner_center_call() {
        let bench = Bench::new(FakeCrm::with(|s| {
            with_usd(s);
            s.opportunities.insert(
                "opp-6".into(),
                Opportunity {
                    id: "opp-6".into(),
                    name: "No solution yet".into(),
                    sync: true,
                    currency: Some("USD".into()),
                    deal_value: Some(1000.0),
                    closing_date: Some(time::macros::date!(2027 - 01 - 31)),
                    customer: Some(Customer {
                        id: "acc".into(),
                        name: "Adatum".into(),
                        country: Some("US".into()),
                        ..Default::default()
                    }),
                    version: Some("1".into()),
                    ..Default::default()
                },
            );
        }))
        .await;
        let ctx = bench.run(Flow::CrmToPartnerCenter, "opp-6").await;
        // Partner Center is unreachable: reaching it would fail the run.
        let (status, why) =
            super::super::crm_to_partner_center::run(&ctx, bench.fake.as_ref(), "opp-6", false)
                .await
                .unwrap();
        assert_eq!(status, RunStatus::Skipped, "{why}");
        assert!(why.contains("Not sent to Partner Center"), "{why}");
        assert!(
            bench
                .actions("opp-6")
                .await
                .contains(&"opportunity_invalid".to_string())
        );
        // The seller reads why on the record.
        let note = bench.fake.lock().opportunities["opp-6"]
            .note
            .clone()
            .unwrap();
        assert!(note.starts_with("✖ Not sent to Partner Center"), "{note}");
    }
}

mod change_feed {
    use super::*;

    #[tokio::test]
    async fn cosells_own_write_is_an_echo_and_a_sellers_edit_is_a_change() {
        let bench = Bench::new(FakeCrm::with(|s| {
            let mut o = made_from(&referral("ref-7"), "opp-7");
            o.version = Some("1".into());
            s.opportunities.insert("opp-7".into(), o);
        }))
        .await;
        let engine = &bench.engine;
        let first = engine.poll_changes().await.unwrap();
        assert!(first.initial && first.queued.is_empty(), "{first:?}");

        // cosell switches sync off and on again through the port: its own writes.
        engine.set_sync("opp-7", true, "admin").await.unwrap();
        let echo = engine.poll_changes().await.unwrap();
        assert_eq!(echo.echoes, 1, "{echo:?}");
        assert!(echo.queued.is_empty(), "{echo:?}");
        assert!(
            bench
                .actions("opp-7")
                .await
                .contains(&"echo_suppressed".to_string())
        );

        // A seller edits it in the CRM: a new version cosell did not write.
        {
            let mut s = bench.fake.lock();
            let o = s.opportunities.get_mut("opp-7").unwrap();
            o.name = "Renamed".into();
            o.version = Some("99".into());
        }
        let change = engine.poll_changes().await.unwrap();
        assert_eq!(change.echoes, 0, "{change:?}");
        assert_eq!(change.queued.len(), 1, "{change:?}");
    }

    #[tokio::test]
    async fn a_linked_opportunitys_solutions_alone_go_to_the_solutions_flow() {
        let bench = Bench::new(FakeCrm::with(|s| {
            for (id, referral) in [
                ("opp-a", Some("ref-a")),
                ("opp-b", Some("ref-b")),
                ("opp-c", None),
                ("opp-d", Some("ref-d")),
            ] {
                s.opportunities.insert(id.into(), linked(id, referral));
            }
        }))
        .await;
        bench.flows_on_except(&[]).await;
        let engine = &bench.engine;
        assert!(engine.poll_changes().await.unwrap().initial);

        let solutions = |o: &mut Opportunity| o.solutions.push("SOL-2".into());
        // Solutions alone, on a linked opportunity.
        bench.seller_edits("opp-a", "2", solutions);
        // Solutions and the deal value, in one poll.
        bench.seller_edits("opp-b", "3", |o| {
            solutions(o);
            o.deal_value = Some(99000.0);
        });
        // Solutions alone, on an opportunity with no referral yet.
        bench.seller_edits("opp-c", "4", solutions);
        // The deal value alone.
        bench.seller_edits("opp-d", "5", |o| o.deal_value = Some(99000.0));
        let report = engine.poll_changes().await.unwrap();
        let mut flows = Vec::new();
        for run in &report.queued {
            let stored = engine.store.run(*run).await.unwrap().unwrap();
            flows.push((stored.record_id.unwrap(), stored.flow));
        }
        assert_eq!(
            flows,
            [
                ("opp-a".to_string(), Flow::SolutionsToPartnerCenter),
                ("opp-b".to_string(), Flow::CrmToPartnerCenter),
                ("opp-c".to_string(), Flow::CrmToPartnerCenter),
                ("opp-d".to_string(), Flow::CrmToPartnerCenter),
            ]
        );

        // A run already waiting carries the next change: the same flow's, or a whole update's.
        bench.seller_edits("opp-a", "6", |o| o.solutions.push("SOL-3".into()));
        bench.seller_edits("opp-d", "7", |o| o.solutions.push("SOL-3".into()));
        let report = engine.poll_changes().await.unwrap();
        assert!(report.queued.is_empty(), "{report:?}");
        // A whole update for opp-a is not held back by its waiting solutions run.
        bench.seller_edits("opp-a", "8", |o| o.name = "Renamed".into());
        let report = engine.poll_changes().await.unwrap();
        assert_eq!(report.queued.len(), 1, "{report:?}");
        assert_eq!(
            bench.flow_of(report.queued[0]).await,
            Flow::CrmToPartnerCenter
        );
    }

    #[tokio::test]
    async fn a_solutions_change_while_the_flow_is_off_waits_as_a_skipped_run() {
        let bench = Bench::new(FakeCrm::with(|s| {
            s.opportunities
                .insert("opp-e".into(), linked("opp-e", Some("ref-e")));
        }))
        .await;
        bench
            .flows_on_except(&[Flow::SolutionsToPartnerCenter])
            .await;
        let engine = &bench.engine;
        engine.poll_changes().await.unwrap();
        bench.seller_edits("opp-e", "2", |o| o.solutions = vec!["SOL-9".into()]);
        let report = engine.poll_changes().await.unwrap();
        assert_eq!(report.queued.len(), 1, "{report:?}");
        let run = engine.store.run(report.queued[0]).await.unwrap().unwrap();
        assert_eq!(run.flow, Flow::SolutionsToPartnerCenter);
        assert_eq!(run.status, RunStatus::Skipped);
        assert!(
            run.outcome.as_deref().unwrap_or_default().starts_with(
                "“Dynamics 365 Microsoft Solutions to Partner Center” is off: the change to opportunity opp-e"
            ),
            "{:?}",
            run.outcome
        );
        assert!(
            bench
                .actions("opp-e")
                .await
                .contains(&AuditAction::OpportunitySkippedFlowOff.as_code().to_string())
        );
    }
}

mod solutions_to_partner_center {
    use super::super::crm_to_partner_center::solutions;
    use super::*;

    /// The opportunity in the CRM, and the mirror as the change feed left it when it queued the run:
    /// its reading of the opportunity (`fed`) and, when given, what Partner Center was last sent.
    async fn with_mirror(
        o: Opportunity,
        fed: &Opportunity,
        pushed: Option<serde_json::Value>,
    ) -> Bench {
        let bench = Bench::new(FakeCrm::with(|s| {
            s.opportunities.insert(o.id.clone(), o.clone());
        }))
        .await;
        let store = &bench.engine.store;
        let now = time::OffsetDateTime::now_utc();
        store
            .record_seen(&crate::engine::change_feed::as_fed(fed), now)
            .await
            .unwrap();
        if let Some(pushed) = pushed {
            store
                .record_sync_result(&o.id, &[], "shared", None, Some(&pushed), now)
                .await
                .unwrap();
        }
        bench
    }

    #[tokio::test]
    async fn solutions_partner_center_already_has_cost_one_read_and_no_call() {
        let o = linked("opp-s", Some("ref-s"));
        let pushed = json!({
            "fields": {
                "/name": "Azure migration",
                "/details/requirements/solutions": [{ "id": "SOL-1", "type": "Name" }],
                "/status": "Active",
            },
            "eTag": "\"7\"",
        });
        let bench = with_mirror(o.clone(), &o, Some(pushed)).await;
        let ctx = bench.run(Flow::SolutionsToPartnerCenter, "opp-s").await;
        // Partner Center is unreachable: reaching it would fail the run.
        let (status, why) = solutions(&ctx, bench.fake.as_ref(), "opp-s").await.unwrap();
        assert_eq!(status, RunStatus::Succeeded, "{why}");
        assert!(why.contains("already has"), "{why}");
        assert_eq!(bench.fake.log(), ["read opp-s"], "no full read, no write");
        let runs = bench.engine.store.related_runs(ctx.run_id()).await.unwrap();
        assert_eq!(
            runs.iter().map(|r| r.flow).collect::<Vec<_>>(),
            [Flow::Customize, Flow::OpportunityToPartnerCenter]
        );
    }

    #[tokio::test]
    async fn an_opportunity_without_a_referral_is_left_to_the_whole_flow() {
        let o = linked("opp-u", None);
        let bench = with_mirror(o.clone(), &o, None).await;
        let ctx = bench.run(Flow::SolutionsToPartnerCenter, "opp-u").await;
        let (status, why) = solutions(&ctx, bench.fake.as_ref(), "opp-u").await.unwrap();
        assert_eq!(status, RunStatus::Skipped, "{why}");
        assert!(
            why.contains("“Dynamics 365 to Partner Center” shares it whole"),
            "{why}"
        );
        assert!(!bench.fake.wrote(), "{:?}", bench.fake.log());
        assert_eq!(
            bench.actions("opp-u").await,
            [AuditAction::OpportunitySkippedUnlinked.as_code()]
        );
    }

    #[tokio::test]
    async fn cleared_solutions_cost_no_call_and_the_note_is_an_echo_only_if_nothing_else_changed() {
        let mut o = linked("opp-x", Some("ref-x"));
        o.solutions.clear();
        let bench = with_mirror(o.clone(), &o, None).await;
        let ctx = bench.run(Flow::SolutionsToPartnerCenter, "opp-x").await;
        let (status, why) = solutions(&ctx, bench.fake.as_ref(), "opp-x").await.unwrap();
        assert_eq!(status, RunStatus::Skipped, "{why}");
        assert!(why.contains("Not sent to Partner Center"), "{why}");
        let written = bench.fake.lock().opportunities["opp-x"].version.clone();
        let mirrored = bench
            .engine
            .store
            .opportunity("opp-x")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            mirrored.written_version, written,
            "the feed will drop its echo"
        );

        // The feed saw the solutions cleared; a seller then raised the deal value too, before the
        // run read the opportunity. The note must reach the feed as that seller's change.
        let fed = o.clone();
        o.deal_value = Some(1.0);
        let bench = with_mirror(o, &fed, None).await;
        let ctx = bench.run(Flow::SolutionsToPartnerCenter, "opp-x").await;
        let (status, _) = solutions(&ctx, bench.fake.as_ref(), "opp-x").await.unwrap();
        assert_eq!(status, RunStatus::Skipped);
        assert!(bench.fake.log().contains(&"write back opp-x".to_string()));
        let mirrored = bench
            .engine
            .store
            .opportunity("opp-x")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mirrored.written_version, None, "not taken for an echo");
    }
}
