import { expect, type Page, type TestInfo } from "@playwright/test";

/** The sandbox emulators' base URL (the server under test puts them on the port after its own). */
export const sandbox = `http://127.0.0.1:${Number(process.env.E2E_PORT ?? 3210) + 1}`;

/** Signs in through the sandbox Entra ID page as one of its demo users: admin, viewer, norole, expired. */
export async function signIn(page: Page, user: string, from = "/") {
  await page.goto(from);
  await page.getByRole("link", { name: "Sign in with Microsoft" }).click();
  await expect(page.getByRole("heading", { name: "Pick an account" })).toBeVisible();
  await page.locator(`button[data-user="${user}"]`).click();
}

/** With JavaScript on, waits until the page is hydrated; with it off, checks it never is. */
export async function expectLive(page: Page, info: TestInfo) {
  if (info.project.name === "js-on") {
    await expect(page.locator("html")).toHaveAttribute("data-hydrated", "true");
  } else {
    await expect(page.locator("html")).not.toHaveAttribute("data-hydrated", "true");
  }
}
