import { expect, test } from "@playwright/test";
import { connect, eventually, expectLive, sandbox, signIn } from "./helpers";

// The Diagnostics page as an admin uses it, JavaScript on and off: a run fails, the page says so and its
// fix (resubmit) works from the page; then "Reconcile now" opens a reconciliation whose progress shows.
// Both projects share one server with the other specs, so each step accepts what ran before.

test("a failing check is fixed from the page, and a reconciliation shows its progress", async ({ page, request }, info) => {
  test.setTimeout(90_000);
  await signIn(page, "admin", "/connections");
  await connect(page, "partner_center");
  await connect(page, "dynamics365");
  await page.goto("/flows");
  await page.getByRole("button", { name: "Activate all in order" }).click();
  await expect(page.locator('tr[data-flow][data-active="false"]')).toHaveCount(0);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Diagnostics" }).click();
  await expect(page).toHaveURL(/\/diagnostics$/);
  await expectLive(page, info);
  for (const id of ["connections-consented", "credentials-current", "flows-order", "runs-failing", "storage"]) {
    await expect(page.locator(`li[data-check="${id}"]`)).toHaveCount(1);
  }
  await expect(page.locator('li[data-check="flows-order"]')).toHaveAttribute("data-state", "ok");

  // The webhook, registered here from the page's own fix when it is not yet (this spec may run first).
  const registered = page.locator('li[data-check="webhook-registered"]');
  if ((await registered.getAttribute("data-state")) !== "ok") {
    await registered.getByRole("button", { name: "Register the webhook here" }).click();
    await expect(page.locator('li[data-check="webhook-registered"]')).toHaveAttribute("data-state", "ok");
  }

  // A referral whose read Partner Center refuses as a bad request: its run fails.
  const fault = await request.post(`${sandbox}/_control/faults`, {
    data: { method: "GET", path_contains: "/engagements/referrals/", status: 400, times: 1 },
  });
  expect(fault.ok()).toBe(true);
  const created = await request.post(`${sandbox}/_control/partner-center/referrals`, {
    data: { name: `Refused once (diagnostics, ${info.project.name})` },
  });
  const referral = (await created.json()).id as string;
  await eventually(page, `/runs?record=${referral}&status=failed`, async () => {
    await expect(page.locator('tr[data-status="failed"]')).toHaveCount(1, { timeout: 1_000 });
  });

  // The page says so (looked at again: checks are kept a minute), with the fix as a button.
  await page.goto("/diagnostics");
  await expectLive(page, info);
  await page.getByRole("button", { name: "Run checks again" }).click();
  const failing = page.locator('li[data-check="runs-failing"]');
  await expect(failing).toHaveAttribute("data-state", "failing");
  await expect(failing).toContainText("refused the data (HTTP 400)");
  await failing.getByRole("button", { name: "Resubmit these" }).click();
  await expect(page.locator('li[data-check="runs-failing"]')).toHaveAttribute("data-state", "ok");
  await eventually(page, `/runs?record=${referral}&status=succeeded&flow=partner_center_to_crm`, async () => {
    await expect(page.locator('tr[data-status="succeeded"]').first()).toBeVisible({ timeout: 1_000 });
  });

  // "Reconcile now" opens the reconciliation's run; its progress bar fills (live with JavaScript, on
  // reload without) and it ends having compared everything.
  await page.goto("/diagnostics");
  await expectLive(page, info);
  await page.getByTestId("reconcile").getByRole("button", { name: "Reconcile now" }).click();
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  const run = new URL(page.url()).pathname;
  await expect(page.getByTestId("run")).toBeVisible();
  const settled = async () => {
    await expect(page.getByTestId("run")).toHaveAttribute("data-status", "succeeded", { timeout: 3_000 });
    const progress = page.getByTestId("progress");
    await expect(progress).toBeVisible();
    await expect(progress.locator("progress")).toBeVisible();
    const total = await progress.getAttribute("data-total");
    await expect(progress).toHaveAttribute("data-compared", total ?? "");
    await expect(progress).toContainText("records compared");
  };
  if (info.project.use.javaScriptEnabled !== false) {
    // No reload: the page reads the run again while it works.
    await settled();
  } else {
    await eventually(page, run, settled);
  }
});
