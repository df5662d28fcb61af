import { expect, test } from "@playwright/test";
import { connect, eventually, expectLive, sandbox, signIn } from "./helpers";

// The whole Partner Center → Dynamics 365 story, as an admin lives it: connect both systems, switch the
// flows on, register the webhook, watch a seller's referral become an opportunity; then a failure, its
// reason, and the resubmission that fixes it. Both projects (JavaScript on, then off) share one server,
// so each step accepts what the other project already did (e.g. "Reconnect" instead of "Connect").

test("a seller's referral becomes an opportunity; a failed run is resubmitted", async ({ page, request }, info) => {
  test.setTimeout(90_000);
  await signIn(page, "admin", "/connections");
  await expectLive(page, info);
  await connect(page, "partner_center");
  await connect(page, "dynamics365");

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Flows" }).click();
  await expect(page).toHaveURL(/\/flows$/);
  await expectLive(page, info);
  await page.getByRole("button", { name: "Activate all in order" }).click();
  await expect(page.locator('tr[data-flow][data-active="false"]')).toHaveCount(0);
  await expect(page.locator('tr[data-flow][data-active="true"]')).not.toHaveCount(0);

  const registration = page.getByRole("region", { name: "Partner Center Webhook Registration" });
  await expect(registration.getByLabel("Callback URL")).toHaveValue(/\/webhooks\/partner-center$/);
  for (const event of ["referral-created", "referral-updated", "related-referral-created", "related-referral-updated"]) {
    await expect(registration.getByLabel(event, { exact: true })).toBeChecked();
  }
  await registration.getByLabel("Overwrite an existing registration").check();
  await registration.getByRole("button", { name: "Run registration" }).click();
  await expect(registration.getByTestId("last-registration")).toHaveAttribute("data-status", "succeeded");

  // A Microsoft seller creates a referral in Partner Center.
  const name = `Contoso expansion (${info.project.name})`;
  const created = await request.post(`${sandbox}/_control/partner-center/referrals`, {
    data: {
      name,
      customerProfile: { name: `Contoso ${info.project.name}`, address: { postalCode: "98052", country: "US" } },
      details: { dealValue: 25000, currency: "USD" },
    },
  });
  expect(created.status()).toBe(201);
  const referral = (await created.json()).id as string;

  await eventually(page, `/runs?record=${referral}&flow=partner_center_to_crm`, async () => {
    await expect(page.locator('tr[data-status="succeeded"]').first()).toBeVisible({ timeout: 1_000 });
  });
  await expectLive(page, info);
  const opportunities = await (await request.get(`${sandbox}/_control/dataverse/opportunities`)).json();
  const opportunity = opportunities.find((o: { msp_referralid: string }) => o.msp_referralid === referral);
  expect(opportunity?.name).toBe(name);

  // Partner Center refuses the next read as a bad request: the run fails and says what to fix. (A refusal
  // only a person can cure — a 403 for a missing role — pauses the run instead: paused.rs.)
  const fault = await request.post(`${sandbox}/_control/faults`, {
    data: { method: "GET", path_contains: "/engagements/referrals/", status: 400, times: 1 },
  });
  expect(fault.ok()).toBe(true);
  const denied = await request.post(`${sandbox}/_control/partner-center/referrals`, {
    data: { name: `Denied once (${info.project.name})` },
  });
  const second = (await denied.json()).id as string;
  await eventually(page, `/runs?record=${second}&status=failed`, async () => {
    await expect(page.locator('tr[data-status="failed"]')).toHaveCount(1, { timeout: 1_000 });
  });
  await expectLive(page, info);
  await page.locator('tr[data-status="failed"] a[href^="/runs/"]').first().click();
  await expect(page.getByTestId("run")).toHaveAttribute("data-status", "failed");
  await expect(page.getByTestId("outcome")).toContainText("Correct the record, then resubmit the run");
  await expectLive(page, info);

  // Resubmit: a new run, linked to the failed one, that succeeds.
  const failedUrl = page.url();
  await page.getByRole("button", { name: /^Resubmit run \d+$/ }).click();
  await expect(page).not.toHaveURL(failedUrl);
  await expect(page.getByText("Resubmission of")).toBeVisible();
  const resubmission = new URL(page.url()).pathname;
  await eventually(page, resubmission, async () => {
    await expect(page.getByTestId("run")).toHaveAttribute("data-status", "succeeded", { timeout: 1_000 });
  });
  const opportunitiesAfter = await (await request.get(`${sandbox}/_control/dataverse/opportunities`)).json();
  expect(opportunitiesAfter.some((o: { msp_referralid: string }) => o.msp_referralid === second)).toBe(true);
});
