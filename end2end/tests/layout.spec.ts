import { expect, test } from "@playwright/test";
import { overflowing, sandbox, setUpConnector, signIn } from "./helpers";

// A window 1280 pixels wide, 200 referrals synced and opportunities waiting for a fix behind every list:
// nothing is wider than its box on any page — not the page, not a table, not a cell — so nothing has to
// be scrolled sideways to be read. A long id is shortened, whole on hover; a not-ready opportunity shows
// its first failing rule and how many more. Both projects share one server: the data is made once.

const REFERRALS = 200;
const TAG = "Layout check";

test.use({ viewport: { width: 1280, height: 800 } });

test("nothing is wider than the page at 1280 pixels, with 200 rows behind every list", async ({ page, request }) => {
  test.setTimeout(180_000);
  await signIn(page, "admin", "/connections");
  await setUpConnector(page);

  const opportunities = async () =>
    ((await (await request.get(`${sandbox}/_control/dataverse/opportunities`)).json()) as { name: string }[]).filter(
      (o) => o.name.startsWith(TAG),
    );
  if ((await opportunities()).length < REFERRALS) {
    for (let i = 1; i <= REFERRALS; i++) {
      const created = await request.post(`${sandbox}/_control/partner-center/referrals`, {
        data: {
          name: `${TAG} ${i}: Fabrikam Worldwide Holdings data platform modernisation and analytics rollout`,
          customerProfile: {
            name: `Fabrikam Worldwide Holdings ${i}`,
            address: { postalCode: "98052", country: "US" },
          },
          details: { dealValue: 25000 + i, currency: "USD" },
        },
      });
      expect(created.status()).toBe(201);
    }
    // Opportunities a seller switched on with nearly everything missing: several rules fail each.
    for (let i = 1; i <= 5; i++) {
      const created = await request.post(`${sandbox}/_control/dataverse/opportunities`, {
        data: { name: `${TAG} not ready ${i}`, msp_syncwithpartnercenter: true },
      });
      expect(created.status()).toBe(201);
    }
  }
  await expect.poll(async () => (await opportunities()).length, { timeout: 150_000 }).toBeGreaterThanOrEqual(
    REFERRALS + 5,
  );

  // The not-ready ones have been checked: the first failing rule, then "and N more rules".
  const notReady = page.locator('tr[data-opportunity]', { hasText: `${TAG} not ready 1` });
  await expect(async () => {
    await page.goto(`/opportunities?q=${encodeURIComponent(`${TAG} not ready 1`)}`);
    await expect(notReady.locator("li[data-rule]")).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(notReady.locator("li[data-more]")).toContainText(/and \d+ more rules?/);

  const pages = ["/", "/runs", "/flows", "/audit", "/opportunities", "/users", "/diagnostics", "/connections", "/mapping", "/settings"];
  await page.goto("/runs");
  const firstRun = await page.locator("tr[data-run] a").first().getAttribute("href");
  await page.goto("/opportunities");
  const firstOpportunity = await page.locator("tr[data-opportunity] td a").first().getAttribute("href");
  for (const path of [...pages, firstRun!, firstOpportunity!]) {
    await page.goto(path);
    await expect(page.locator("main h1")).toBeVisible();
    expect(await overflowing(page), `${path} at 1280 × 800`).toEqual([]);
  }

  // A shortened id is whole in its title and in its text (so copying it copies all of it).
  await page.goto("/runs?flow=partner_center_to_crm");
  const id = page.locator("tr[data-run] .id").first();
  const whole = await id.getAttribute("title");
  expect(whole?.length).toBeGreaterThan(20);
  await expect(id).toHaveText(whole!);
  const box = await id.boundingBox();
  expect(box!.width).toBeLessThan(160);
});
