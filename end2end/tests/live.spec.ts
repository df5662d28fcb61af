import { expect, test } from "@playwright/test";
import { expectLive, sandbox, setUpConnector, signIn } from "./helpers";

// Live pages: with the Runs page open, a seller's new referral appears as a run and turns to succeeded
// without a reload. (With JavaScript off nothing listens; a reload shows the same, as sync.spec.ts does.)

test("the Runs page shows a new run and its end without a reload", async ({ page, request }, info) => {
  test.skip(info.project.use.javaScriptEnabled === false, "needs JavaScript; without it a reload shows the same");
  test.setTimeout(60_000);
  await signIn(page, "admin", "/connections");
  await setUpConnector(page);
  await page.goto("/runs?flow=partner_center_to_crm");
  await expectLive(page, info);
  // A mark on this document: a reload or a navigation would lose it.
  await page.evaluate(() => document.documentElement.setAttribute("data-stayed", "yes"));

  const created = await request.post(`${sandbox}/_control/partner-center/referrals`, {
    data: {
      name: "Live pages: Northwind renewal",
      customerProfile: { name: "Northwind Traders", address: { postalCode: "98052", country: "US" } },
    },
  });
  expect(created.status()).toBe(201);
  const referral = (await created.json()).id as string;

  // The referral's run (listed newest first: the last of its rows; the echo of cosell's write-back may
  // follow it).
  const run = page.locator("tr[data-run]", { has: page.locator(`.id[title="${referral}"]`) }).last();
  await expect(run).toBeVisible({ timeout: 20_000 });
  await expect(run).toHaveAttribute("data-status", "succeeded", { timeout: 20_000 });
  await expect(page.locator("html")).toHaveAttribute("data-stayed", "yes");
});
