import { expect, test } from "@playwright/test";
import { eventually, expectLive, sandbox, setUpConnector, signIn } from "./helpers";

// The Overview's three charts, drawn on the server as SVG: they render with JavaScript on and off, each
// is an image named by its title and described in numbers, and its table of numbers opens without
// JavaScript. Both projects share one server with the other specs, so counts only grow.

test("the charts draw syncs, API calls against the quota and failures, with their numbers", async ({ page, request }, info) => {
  test.setTimeout(60_000);
  await signIn(page, "admin", "/connections");
  await setUpConnector(page);
  const created = await request.post(`${sandbox}/_control/partner-center/referrals`, {
    data: { name: `Charted (${info.project.name})` },
  });
  expect(created.status()).toBe(201);
  const referral = (await created.json()).id as string;
  await expect
    .poll(async () => {
      const rows = await (await request.get(`${sandbox}/_control/dataverse/opportunities`)).json();
      return rows.some((o: { msp_referralid?: string }) => o.msp_referralid === referral);
    }, { timeout: 20_000 })
    .toBe(true);

  // Its run ends just after the opportunity is made (the CRM id still goes back to Partner Center).
  const charts = page.getByRole("region", { name: "Charts" });
  const syncs = charts.locator('figure[data-chart="syncs"]');
  await eventually(page, "/", async () => {
    await expect(syncs.getByRole("img")).toHaveAccessibleName(/[1-9]\d* syncs? in the last 7 days/, { timeout: 1_000 });
  });
  await expectLive(page, info);
  for (const title of [
    "Syncs per hour, last 7 days",
    "API calls to Partner Center per day, last 30 days",
    "API calls to Dynamics 365 per day, last 30 days",
    "Failed runs per day by cause, last 30 days",
  ]) {
    await expect(charts.getByRole("img", { name: new RegExp(`^${title} `) })).toBeVisible();
  }
  expect(await syncs.locator("path.bar").count()).toBeGreaterThan(0);
  await expect(syncs.locator(".legend")).toContainText("To Dynamics 365 · succeeded");

  // The quota is named (drawn as a line once the calls come near it), and the numbers open as a table
  // (a <details>, no script needed).
  const calls = charts.locator('figure[data-chart="calls-partner_center"]');
  await expect(calls.locator("text.limit")).toHaveText(/^Daily budget: 10,000/);
  const table = calls.getByRole("table");
  await expect(table).toBeHidden();
  await calls.getByText("The numbers").click();
  await expect(table).toBeVisible();
  await expect(table.locator("tbody tr")).not.toHaveCount(0);
});
