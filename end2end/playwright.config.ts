import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The dashboards under test: the real binary in sandbox mode, on ports of their own, with fresh databases:
// one with Dynamics 365 as its CRM, one with Salesforce (each runs its own sandbox on the port after it).
const port = Number(process.env.E2E_PORT ?? 3210);
const salesforcePort = port + 2;
// The guided setup starts from nothing: a fresh server for each project (JavaScript on, then off).
const setupPorts = [port + 4, port + 6];
const dataDir = mkdtempSync(join(tmpdir(), "cosell-e2e-"));
const server = (at: number, extra: string) => ({
  command:
    `../target/debug/cosell serve --sandbox --addr 127.0.0.1:${at} --sandbox-addr 127.0.0.1:${at + 1} ` +
    `--database-url sqlite://${dataDir}/e2e-${at}.db --site-root ../target/site --crm-poll-ms 500 ${extra}`,
  url: `http://127.0.0.1:${at}/healthz`,
  reuseExistingServer: false,
  timeout: 60_000,
  stdout: "ignore" as const,
  stderr: "pipe" as const,
});

export default defineConfig({
  testDir: "./tests",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: "list",
  timeout: 30_000,
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    // The sign-in and consent redirects take the browser to the sandbox's emulated Entra ID and
    // Salesforce pages, which are served over HTTPS with a certificate from the sandbox's own CA, made at
    // each start and in no browser's trust store. Every project (and every context a test opens) accepts
    // it; cosell itself verifies that certificate against the sandbox's CA.
    ignoreHTTPSErrors: true,
    trace: "off",
    launchOptions: {
      // Debian's chromium; Playwright never downloads a browser here.
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [
    { name: "js-on", use: { javaScriptEnabled: true }, testIgnore: /salesforce|setup/ },
    { name: "js-off", use: { javaScriptEnabled: false }, testIgnore: /salesforce|setup/ },
    {
      name: "setup-js-on",
      use: { javaScriptEnabled: true, baseURL: `http://127.0.0.1:${setupPorts[0]}` },
      testMatch: /setup/,
    },
    {
      name: "setup-js-off",
      use: { javaScriptEnabled: false, baseURL: `http://127.0.0.1:${setupPorts[1]}` },
      testMatch: /setup/,
    },
    {
      name: "salesforce-js-on",
      use: { javaScriptEnabled: true, baseURL: `http://127.0.0.1:${salesforcePort}` },
      testMatch: /salesforce/,
    },
    {
      name: "salesforce-js-off",
      use: { javaScriptEnabled: false, baseURL: `http://127.0.0.1:${salesforcePort}` },
      testMatch: /salesforce/,
    },
  ],
  webServer: [
    server(port, ""),
    server(salesforcePort, "--crm salesforce"),
    ...setupPorts.map((at) => server(at, "")),
  ],
});
