import { expect, test } from "@playwright/test";
import { connect, eventually, expectLive, sandbox, signIn } from "./helpers";

// Dynamics 365 → Partner Center, as an admin lives it: switch "Sync with Partner Center" on for an
// opportunity whose customer has no country, read what is missing, have it fixed in the CRM, watch the
// referral appear with its link, and read the opportunity's timeline. Each project (JavaScript on, then
// off) makes an account and an opportunity of its own in the sandbox CRM.

test("an opportunity missing its country is shared once the CRM is fixed", async ({ page, request }, info) => {
  test.setTimeout(90_000);
  await signIn(page, "admin", "/connections");
  await connect(page, "partner_center");
  await connect(page, "dynamics365");
  await page.goto("/flows");
  await page.getByRole("button", { name: "Activate all in order" }).click();
  await expect(page.locator('tr[data-flow][data-active="false"]')).toHaveCount(0);

  // A seller's opportunity in the CRM: everything set but the customer's country.
  const customer = `Tailspin Toys (${info.project.name})`;
  const account = await request.post(`${sandbox}/_control/dataverse/accounts`, {
    data: { name: customer, address1_city: "Seattle", address1_postalcode: "98101" },
  });
  expect(account.status()).toBe(201);
  const accountId = (await account.json()).id as string;
  const name = `Tailspin cloud migration (${info.project.name})`;
  const created = await request.post(`${sandbox}/_control/dataverse/opportunities`, {
    data: {
      name,
      estimatedvalue: 64000,
      estimatedclosedate: "2027-05-31",
      msp_microsoftsolutions: "SOL-TAILSPIN-1",
      "customerid_account@odata.bind": `/accounts(${accountId})`,
      "transactioncurrencyid@odata.bind": "/transactioncurrencies(c0a1f000-0000-4000-8000-000000000840)",
    },
  });
  expect(created.status()).toBe(201);
  const opportunityId = (await created.json()).id as string;

  // The change feed brings it to the list; the admin switches sync on.
  const row = page.locator(`tr[data-opportunity="${opportunityId}"]`);
  await eventually(page, `/opportunities?q=${encodeURIComponent(name)}`, async () => {
    await expect(row).toBeVisible({ timeout: 1_000 });
  });
  await expectLive(page, info);
  await row.getByRole("button", { name: `Turn sync on for ${name}` }).click();
  await expect(row).toHaveAttribute("data-sync", "true");

  // Not ready: no Partner Center call, and the page says what is missing and how to fix it.
  await eventually(page, `/opportunities?q=${encodeURIComponent(name)}`, async () => {
    await expect(row.locator('li[data-rule="country_missing"]')).toBeVisible({ timeout: 1_000 });
  });
  await expect(row.getByTestId("problems")).toContainText("Customer account country code is missing");
  await expect(row.getByTestId("referral-link")).toHaveCount(0);

  // Fixed in the CRM: the account gets its ISO code, and the referral appears with its link.
  const fixed = await request.patch(`${sandbox}/_control/dataverse/accounts/${accountId}`, {
    data: { address1_country: "US" },
  });
  expect(fixed.ok()).toBe(true);
  await eventually(page, `/opportunities?q=${encodeURIComponent(name)}`, async () => {
    await expect(row.getByTestId("referral-link")).toBeVisible({ timeout: 1_000 });
  });
  const referralId = (await row.getByTestId("referral-link").textContent())!.trim();
  const referral = await (await request.get(`${sandbox}/_control/partner-center/referrals/${referralId}`)).json();
  expect(referral.externalReferenceId).toBe(opportunityId);
  expect(referral.customerProfile.address.country).toBe("US");

  // The timeline tells the whole story.
  await row.getByRole("link", { name }).click();
  await expect(page).toHaveURL(new RegExp(`/opportunities/${opportunityId}$`));
  await expectLive(page, info);
  const timeline = page.getByTestId("audit");
  for (const action of ["sync_switched_on", "opportunity_invalid", "referral_created"]) {
    await expect(timeline.locator(`tr[data-action="${action}"]`).first()).toBeVisible();
  }
  await expect(timeline.locator('tr[data-action="referral_created"]')).toContainText("/details/dealValue");
  await expect(page.getByTestId("opportunity").getByTestId("referral-link")).toHaveText(referralId);
});
