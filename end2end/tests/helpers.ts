import { expect, type Page, type TestInfo } from "@playwright/test";

/**
 * The sandbox's control API (the server under test puts the sandbox on the port after its own). Plain
 * HTTP: the emulated APIs on the same port speak HTTPS only, the control API both.
 */
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
  // From the project's own setting: the Salesforce projects are named salesforce-js-on/-off.
  if (info.project.use.javaScriptEnabled !== false) {
    await expect(page.locator("html")).toHaveAttribute("data-hydrated", "true");
  } else {
    await expect(page.locator("html")).not.toHaveAttribute("data-hydrated", "true");
  }
}

/** Connects `system` through the sandbox's consent page as the admin (from the Connections page). */
export async function connect(page: Page, system: string) {
  const card = page.locator(`section[data-connection="${system}"]`);
  await card.getByRole("button", { name: /^(Connect|Reconnect)$/ }).click();
  // The sandbox's consent page (Entra ID): pick the admin account; it sends the browser back.
  await expect(page.getByRole("heading", { name: "Pick an account" })).toBeVisible();
  await page.locator('button[data-user="admin"]').click();
  await expect(page).toHaveURL(/\/connections\?connected=/);
  await expect(card.locator(".status")).toHaveText("Connected");
}

/** Reloads `path` until `check` passes: the engine works in the background, the page does not push. */
export async function eventually(page: Page, path: string, check: () => Promise<void>) {
  await expect(async () => {
    await page.goto(path);
    await check();
  }).toPass({ timeout: 20_000 });
}
