import { expect, test } from "@playwright/test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { eventually, expectLive, setUpConnector, signIn } from "./helpers";

// Alerts as an admin meets them, JavaScript on and off: the alert webhook is set on Settings and tried
// with "Send test alert" (a receiver this test starts gets it); a day's Partner Center budget spent opens
// an alert, shown in a banner on every page and sent to the webhook; the Alerts page lists it and
// Acknowledge takes it off the banner; the budget raised again resolves it. Both projects share one
// server with the other specs, so the test leaves the budget and the webhook as it found them.

test("an alert is set up, tried, raised, shown, acknowledged and resolved", async ({ page }, info) => {
  test.setTimeout(90_000);
  const received: { text?: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received.push(JSON.parse(body));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const port = (receiver.address() as AddressInfo).port;
  const got = (text: RegExp) =>
    expect.poll(() => received.some((m) => text.test(m.text ?? "")), { timeout: 15_000 }).toBe(true);

  try {
    await signIn(page, "admin", "/connections");
    // Calls spent today: a budget of 1 is spent.
    await setUpConnector(page);
    await page.goto("/settings");
    await expectLive(page, info);
    const alerts = page.getByRole("region", { name: "Alerts" });
    await alerts.getByLabel("Send alerts to a webhook").check();
    await alerts.getByLabel(/^URL/).fill(`http://127.0.0.1:${port}/services/T0/B0/slack-token`);
    await alerts.getByLabel("Format").selectOption("slack");
    await alerts.getByRole("button", { name: "Save alerts" }).click();
    // The URL is a secret (Slack's and Teams' carry their token in it): only its host is shown.
    await expect(alerts.getByText(`now http://127.0.0.1:${port}/…; empty keeps it`)).toBeVisible();
    await expect(page.locator("body")).not.toContainText("slack-token");
    await alerts.getByRole("button", { name: "Send test alert" }).click();
    await got(/^\[cosell\] Test: A test alert from cosell$/);

    // The day's Partner Center budget set to what is spent already.
    const budgets = page.getByTestId("budgets");
    await budgets.locator('input[name="partner_center"]').fill("1");
    await budgets.getByRole("button", { name: "Save budgets" }).click();
    const title = "Partner Center: 100 % of the day's API budget used";
    await eventually(page, "/runs", async () => {
      await expect(page.getByTestId("alert-banner")).toContainText(title, { timeout: 1_000 });
    });
    await got(/^\[cosell\] Critical: Partner Center: 100 % of the day's API budget used$/);

    await page.getByTestId("alert-banner").getByRole("link", { name: "See alerts" }).click();
    await expect(page).toHaveURL(/\/alerts$/);
    await expectLive(page, info);
    const alert = page.locator('ul.alerts > li[data-state="open"]').filter({ hasText: title });
    await expect(alert).toHaveCount(1);
    await expect(alert).toContainText("Webhook: opened, sent");
    await alert.getByRole("button", { name: /^Acknowledge alert \d+$/ }).click();
    await eventually(page, "/alerts", async () => {
      await expect(alert).toContainText("acknowledged by", { timeout: 1_000 });
      await expect(page.getByTestId("alert-banner")).toHaveCount(0);
    });

    // The budget back to its default: the cause clears, the alert resolves and the webhook hears it.
    await page.goto("/settings");
    await page.getByTestId("budgets").locator('input[name="partner_center"]').fill("");
    await page.getByTestId("budgets").getByRole("button", { name: "Save budgets" }).click();
    await eventually(page, "/alerts", async () => {
      await expect(page.locator('ul.alerts > li[data-state="open"]').filter({ hasText: title })).toHaveCount(0, {
        timeout: 1_000,
      });
    });
    await got(/^\[cosell\] Resolved: Partner Center: 100 % of the day's API budget used$/);

    // The receiver goes away with this test: the webhook is switched off.
    await page.goto("/settings");
    await page.getByRole("region", { name: "Alerts" }).getByLabel("Send alerts to a webhook").uncheck();
    await page.getByRole("region", { name: "Alerts" }).getByRole("button", { name: "Save alerts" }).click();
    await expect(page.getByRole("region", { name: "Alerts" }).getByText("URL (https://…)")).toBeVisible();
  } finally {
    receiver.close();
  }
});
