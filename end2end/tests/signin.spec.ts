import { expect, test } from "@playwright/test";
import { expectLive, signIn } from "./helpers";

test("an admin signs in, sees the overview, and signs out", async ({ page }, info) => {
  await signIn(page, "admin");
  await expect(page).toHaveURL(/\/$/);
  await expectLive(page, info);
  await expect(page.getByTestId("signed-in-name")).toHaveText("Adele Vance");
  await expect(page.getByTestId("overview-role")).toHaveText("Referrals admin");
  await expect(page).toHaveTitle("Overview · cosell");
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" })).toBeVisible();

  await page.getByRole("button", { name: "Sign out" }).first().click();
  await expect(page.getByRole("link", { name: "Sign in with Microsoft" })).toBeVisible();
  await expect(page.getByTestId("signed-in-name")).toHaveCount(0);
});

test("a user without a role is told which role is missing and how to get it", async ({ page }, info) => {
  await signIn(page, "norole");
  await expectLive(page, info);
  const card = page.getByTestId("no-role");
  await expect(card).toBeVisible();
  await expect(card).toContainText("Alex Wilber");
  await expect(card).toContainText("Cosell.Admin");
  await expect(card).toContainText("Cosell.Viewer");
  await expect(card).toContainText("Enterprise applications");
  await expect(page.getByRole("navigation", { name: "Main" })).toHaveCount(0);
  await page.goto("/users");
  await expect(page.getByTestId("no-role")).toBeVisible();
  await expect(page.getByTestId("users")).toHaveCount(0);
});

test("an expired password is explained, and nothing is signed in", async ({ page }) => {
  await signIn(page, "expired");
  const error = page.locator("#sign-in-error");
  await expect(error).toHaveAttribute("data-code", "password_expired");
  await expect(error).toContainText("Your password has expired");
  await page.goto("/");
  await expect(page.getByRole("link", { name: "Sign in with Microsoft" })).toBeVisible();
});

test("a sign-in started from a page comes back to it", async ({ page }) => {
  await signIn(page, "viewer", "/users");
  await expect(page).toHaveURL(/\/users$/);
  await expect(page.getByTestId("users")).toBeVisible();
});
