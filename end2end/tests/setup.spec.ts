import { expect, test, type Locator } from "@playwright/test";
import { expectLive } from "./helpers";

// A newcomer on a fresh server: from signing in to the first synced referral through the Overview's
// guided setup, every click counted — at most 8 — with JavaScript on and off (each project has a fresh
// server of its own, on the ports after the main ones; its sandbox is on the port after its own).

test("from sign-in to the first synced referral in at most 8 clicks", async ({ page, request }, info) => {
  test.setTimeout(90_000);
  const base = new URL(String(info.project.use.baseURL));
  const sandbox = `http://127.0.0.1:${Number(base.port) + 1}`;
  let clicks = 0;
  const click = async (target: Locator) => {
    clicks += 1;
    await target.click();
  };

  await page.goto("/");
  await click(page.getByRole("link", { name: "Sign in with Microsoft" }));
  await click(page.locator('button[data-user="admin"]'));
  const setup = page.getByRole("region", { name: "Set up cosell" });
  await expect(setup).toBeVisible();
  await expectLive(page, info);
  await expect(setup.locator("li[data-step]")).toHaveCount(4);
  await expect(setup.locator('li[data-done="true"]')).toHaveCount(0);

  for (const system of ["partner_center", "dynamics365"]) {
    await click(setup.locator(`li[data-step="${system}"] button`));
    await expect(page.getByRole("heading", { name: "Pick an account" })).toBeVisible();
    await click(page.locator('button[data-user="admin"]'));
    await expect(page).toHaveURL(/\/\?connected=/);
    await expect(page.getByRole("status")).toContainText("is connected and works");
    await expect(setup.locator(`li[data-step="${system}"]`)).toHaveAttribute("data-done", "true");
  }
  await click(setup.locator('li[data-step="flows"] button'));
  await expect(setup.locator('li[data-step="flows"]')).toHaveAttribute("data-done", "true");
  await click(setup.locator('li[data-step="webhook"] button'));
  // Everything is set up: the card gives way to the health checks.
  await expect(setup).toHaveCount(0);
  await expect(page.locator('li[data-check="webhook"]')).toHaveAttribute("data-state", "ok");
  expect(clicks).toBeLessThanOrEqual(8);

  // A Microsoft seller shares a referral: it becomes an opportunity in the CRM, with no further click.
  const created = await request.post(`${sandbox}/_control/partner-center/referrals`, {
    data: {
      name: `First referral (${info.project.name})`,
      customerProfile: { name: "Contoso Pharmaceuticals", address: { postalCode: "98052", country: "US" } },
    },
  });
  expect(created.status()).toBe(201);
  const referral = (await created.json()).id as string;
  await expect
    .poll(
      async () => {
        const rows = await (await request.get(`${sandbox}/_control/dataverse/opportunities`)).json();
        return rows.some((o: { msp_referralid?: string }) => o.msp_referralid === referral);
      },
      { timeout: 20_000 },
    )
    .toBe(true);
  expect(clicks, "clicks from sign-in to the first synced referral").toBe(8);
});
