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

/**
 * Makes the connector ready to sync as an admin would: both systems connected, every flow on, the
 * webhook registered here for the four events. Accepts what an earlier test already did.
 */
export async function setUpConnector(page: Page) {
  await page.goto("/connections");
  await connect(page, "partner_center");
  await connect(page, "dynamics365");
  await page.goto("/flows");
  await page.getByRole("button", { name: "Activate all in order" }).click();
  await expect(page.locator('tr[data-flow][data-active="false"]')).toHaveCount(0);
  const registration = page.getByRole("region", { name: "Partner Center Webhook Registration" });
  await registration.getByLabel("Overwrite an existing registration").check();
  await registration.getByRole("button", { name: "Run registration" }).click();
  await expect(registration.getByTestId("last-registration")).toHaveAttribute("data-status", "succeeded");
}

/**
 * What is wider than its box on the page: the page itself, or any element whose content overflows it (a
 * table's scrolling wrapper included). Text shortened on purpose by a CSS ellipsis is not counted when
 * its title holds the whole of it, as `.id` does; one without is.
 */
export async function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const found: string[] = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) {
      found.push(`the page: ${root.scrollWidth} px in ${root.clientWidth}`);
    }
    for (const el of Array.from(document.body.querySelectorAll<HTMLElement>("*"))) {
      // Inline boxes and hidden elements have no width of their own to overflow.
      if (el.clientWidth === 0 || el.scrollWidth <= el.clientWidth + 1) continue;
      const style = getComputedStyle(el);
      if (style.textOverflow === "ellipsis" && el.title !== "" && el.title === el.textContent) continue;
      const name = el.tagName.toLowerCase() + (el.className ? `.${String(el.className).replace(/ /g, ".")}` : "");
      found.push(`${name}: ${el.scrollWidth} px in ${el.clientWidth} (${(el.textContent ?? "").trim().slice(0, 60)})`);
    }
    return found;
  });
}
