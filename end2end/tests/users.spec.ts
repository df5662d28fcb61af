import { expect, test } from "@playwright/test";
import { expectLive, signIn } from "./helpers";

test("an admin signs a viewer out everywhere", async ({ browser, page }, info) => {
  // The viewer, in a browser of their own.
  const viewerContext = await browser.newContext({
    javaScriptEnabled: info.project.use.javaScriptEnabled !== false,
    // The sandbox's sign-in page is HTTPS with the sandbox's own CA (see playwright.config.ts).
    ignoreHTTPSErrors: true,
  });
  const viewer = await viewerContext.newPage();
  await signIn(viewer, "viewer");
  await expect(viewer.getByTestId("signed-in-name")).toHaveText("Megan Bowen");

  await signIn(page, "admin");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
  await expect(page).toHaveURL(/\/users$/);
  await expectLive(page, info);
  const row = page.locator('tr[data-user^="megan@"]');
  await row.getByRole("button", { name: "Sign out Megan Bowen everywhere" }).click();
  await expect(row).toContainText("Ended");

  await viewer.reload();
  await expect(viewer.getByRole("link", { name: "Sign in with Microsoft" })).toBeVisible();
  await viewerContext.close();
});

test("a viewer sees the users but no way to change anything", async ({ page }) => {
  await signIn(page, "viewer", "/users");
  await expect(page.getByTestId("users")).toBeVisible();
  await expect(page.locator('tr[data-user^="megan@"]')).toBeVisible();
  await expect(page.getByRole("button", { name: /everywhere/ })).toHaveCount(0);
});
