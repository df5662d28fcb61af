import { expect, type Page, test } from "@playwright/test";
import { eventually, expectLive, signIn } from "./helpers";

// Salesforce as the CRM (a server started with --crm salesforce): connect Partner Center and Salesforce,
// switch every flow on, register the webhook; a seller's referral becomes a Salesforce opportunity; an
// opportunity switched on in the dashboard becomes a referral; one that is not ready shows what is
// missing. Both projects (JavaScript on, then off) share that server and make records of their own.

/** This server's sandbox's control API (plain HTTP): the port after its own. */
function sandboxOf(page: Page): string {
  const port = Number(new URL(page.url()).port);
  return `http://127.0.0.1:${port + 1}`;
}

/** Connects `system` through its consent page as the admin: Entra's account picker, or Salesforce's. */
async function connectAs(page: Page, system: string, heading: string) {
  const card = page.locator(`section[data-connection="${system}"]`);
  await card.getByRole("button", { name: /^(Connect|Reconnect)$/ }).click();
  await expect(page.getByRole("heading", { name: heading })).toBeVisible();
  await page.locator('button[data-user="admin"]').click();
  await expect(page).toHaveURL(/\/connections\?connected=/);
  await expect(card.locator(".status")).toHaveText("Connected");
}

test("Salesforce: a referral becomes an opportunity, and an opportunity switched on becomes a referral", async ({ page, request }, info) => {
  test.setTimeout(90_000);
  await signIn(page, "admin", "/connections");
  await expectLive(page, info);
  const sandbox = sandboxOf(page);
  await expect(page.locator('section[data-connection="salesforce"]')).toBeVisible();
  await expect(page.locator('section[data-connection="dynamics365"]')).toHaveCount(0);
  await connectAs(page, "partner_center", "Pick an account");
  await connectAs(page, "salesforce", "Log in to Salesforce");

  await page.goto("/flows");
  await expect(page.locator('tr[data-flow="partner_center_to_crm"]')).toContainText("Partner Center to Salesforce");
  await page.getByRole("button", { name: "Activate all in order" }).click();
  await expect(page.locator('tr[data-flow][data-active="false"]')).toHaveCount(0);
  await expect(page.locator('tr[data-flow="helper"]')).toHaveCount(0);
  const registration = page.getByRole("region", { name: "Partner Center Webhook Registration" });
  await registration.getByLabel("Overwrite an existing registration").check();
  await registration.getByRole("button", { name: "Run registration" }).click();
  await expect(registration.getByTestId("last-registration")).toHaveAttribute("data-status", "succeeded");

  // A Microsoft seller's referral becomes a Salesforce opportunity, its id written back.
  const name = `Northwind expansion (${info.project.name})`;
  const created = await request.post(`${sandbox}/_control/partner-center/referrals`, {
    data: {
      name,
      customerProfile: { name: `Northwind ${info.project.name}`, address: { postalCode: "98052", country: "US" } },
      details: { dealValue: 25000, currency: "USD", closingDateTime: "2027-06-30T00:00:00Z" },
    },
  });
  expect(created.status()).toBe(201);
  const referral = (await created.json()).id as string;
  await eventually(page, `/runs?record=${referral}&flow=partner_center_to_crm`, async () => {
    await expect(page.locator('tr[data-status="succeeded"]').first()).toBeVisible({ timeout: 1_000 });
  });
  const opportunities = await (await request.get(`${sandbox}/_control/salesforce/Opportunity`)).json();
  const made = opportunities.find((o: { Referral_Identifier__c: string }) => o.Referral_Identifier__c === referral);
  expect(made?.Name).toBe(name);
  expect(made?.Amount).toBe(25000);
  const back = await (await request.get(`${sandbox}/_control/partner-center/referrals/${referral}`)).json();
  expect(back.externalReferenceId).toBe(made.Id);

  // A seller's own opportunity in Salesforce, ready to share: switched on from the dashboard.
  const ready = `Fabrikam analytics (${info.project.name})`;
  const opportunity = await request.post(`${sandbox}/_control/salesforce/Opportunity`, {
    data: {
      Name: ready,
      AccountId: "0015J0000000001QAA",
      Amount: 64000,
      CloseDate: "2027-05-31",
      StageName: "Qualification",
      CurrencyIsoCode: "USD",
      Microsoft_Solutions__c: "SOL-NW-1",
    },
  });
  expect(opportunity.ok()).toBe(true);
  const readyId = (await opportunity.json()).id as string;
  // One that is not ready: no solution.
  const notReady = `Fabrikam pilot (${info.project.name})`;
  const second = await request.post(`${sandbox}/_control/salesforce/Opportunity`, {
    data: { Name: notReady, AccountId: "0015J0000000001QAA", Amount: 5000, CloseDate: "2027-05-31", StageName: "Prospecting", CurrencyIsoCode: "USD" },
  });
  const notReadyId = (await second.json()).id as string;

  const row = page.locator(`tr[data-opportunity="${readyId}"]`);
  await eventually(page, `/opportunities?q=${encodeURIComponent(ready)}`, async () => {
    await expect(row).toBeVisible({ timeout: 1_000 });
  });
  await expectLive(page, info);
  await row.getByRole("button", { name: `Turn sync on for ${ready}` }).click();
  await eventually(page, `/opportunities?q=${encodeURIComponent(ready)}`, async () => {
    await expect(row.getByTestId("referral-link")).toBeVisible({ timeout: 1_000 });
  });
  const shared = (await row.getByTestId("referral-link").textContent())!.trim();
  const sharedReferral = await (await request.get(`${sandbox}/_control/partner-center/referrals/${shared}`)).json();
  expect(sharedReferral.externalReferenceId).toBe(readyId);
  const inSalesforce = await (await request.get(`${sandbox}/_control/salesforce/Opportunity/${readyId}`)).json();
  expect(inSalesforce.Referral_Identifier__c).toBe(shared);

  const pending = page.locator(`tr[data-opportunity="${notReadyId}"]`);
  await eventually(page, `/opportunities?q=${encodeURIComponent(notReady)}`, async () => {
    await expect(pending).toBeVisible({ timeout: 1_000 });
  });
  await pending.getByRole("button", { name: `Turn sync on for ${notReady}` }).click();
  await eventually(page, `/opportunities?q=${encodeURIComponent(notReady)}`, async () => {
    await expect(pending.locator('li[data-rule="solution_missing"]')).toBeVisible({ timeout: 1_000 });
  });
  await expect(pending.getByTestId("referral-link")).toHaveCount(0);
});
