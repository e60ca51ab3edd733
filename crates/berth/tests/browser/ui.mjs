// The web UI in a real browser (Debian's Chromium through playwright-core), against a running
// `berth` that tests/browser.rs started and seeded. Every step is what a person does: labels,
// buttons and links found by their visible text. Exits non-zero with the failed step.
//
// Environment: BERTH_URL, CHROMIUM, UI_TOOLS (a node_modules parent with playwright-core and
// axe-core), USER_NAME, USER_PASSWORD, DEMO_REPO (an image pushed with podman, tag 1.0),
// MANY_REPO and MANY_TAGS (a repository with that many tags t000000…), SCREENSHOTS (a directory:
// screenshots of the main pages in light and dark are written there; optional).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.UI_TOOLS, "package.json"));
const { chromium } = require("playwright-core");
// Evaluated over the DevTools protocol: the pages' Content-Security-Policy (only this origin's
// scripts) would refuse it as a <script> tag, as it should.
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const base = process.env.BERTH_URL;
const user = process.env.USER_NAME;
const password = process.env.USER_PASSWORD;
const demo = process.env.DEMO_REPO;
const many = process.env.MANY_REPO;
const scanned = process.env.SCANNED_REPO;
const manyTags = Number(process.env.MANY_TAGS);
const shots = process.env.SCREENSHOTS || "";

let step = "start";
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}
async function expectText(page, text) {
  const body = await page.locator("main").innerText();
  check(body.includes(text), `expected "${text}" on ${page.url()}, got:\n${body.slice(0, 800)}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
const timings = {};
const a11y = [];

async function audit(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  a11y.push({ page: name, violations: result.length, serious: bad.length });
  check(bad.length === 0, `accessibility of ${name}: ${JSON.stringify(bad)}`);
}

try {
  const context = await browser.newContext({ baseURL: base });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);

  step = "sign in";
  await page.goto("/signin");
  await audit(page, "sign-in");
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL("**/repository");
  await expectText(page, demo);
  await audit(page, "repositories");

  step = "create an organization";
  await page.getByRole("link", { name: "Organizations" }).click();
  await page.waitForURL("**/organization");
  await page.getByLabel("Name", { exact: true }).fill("uiorg");
  await page.getByRole("button", { name: "Create organization" }).click();
  await page.waitForURL("**/organization/uiorg");
  await audit(page, "organization");

  step = "create a team";
  await page.getByRole("link", { name: "Teams" }).click();
  await page.getByLabel("Name", { exact: true }).fill("builders");
  await page.getByLabel("Role").selectOption("creator");
  await page.getByRole("button", { name: "Create team" }).click();
  await page.waitForURL("**/organization/uiorg/teams/builders");
  await expectText(page, "creator");

  step = "create a robot and copy its credentials";
  await page.goto("/organization/uiorg?tab=robots");
  await page.getByLabel("Name (after uiorg+)").fill("deployer");
  await page.getByRole("button", { name: "Create robot account" }).click();
  await page.waitForURL("**/organization/uiorg/robots/deployer");
  const token = (await page.locator("#robot-token").innerText()).trim();
  check(token.length >= 32, `a token, got ${JSON.stringify(token)}`);
  await page.getByRole("button", { name: "Copy token" }).click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === token, "the copy button copies the token");
  await expectText(page, `podman login --tls-verify=false -u 'uiorg+deployer' -p '${token}'`);
  await expectText(page, "kubernetes.io/dockerconfigjson");
  await audit(page, "robot credentials");
  if (shots) await page.screenshot({ path: path.join(shots, "robot-light.png"), fullPage: true });

  step = "create a repository and give the robot a permission";
  await page.goto("/repository");
  await page.getByLabel("New repository's namespace").selectOption("uiorg");
  await page.getByLabel("New repository's name", { exact: true }).fill("app");
  await page.getByLabel("New repository's description").fill("The **app** image.");
  await page.getByRole("button", { name: "Create repository" }).click();
  await page.waitForURL("**/repository/uiorg/app");
  check((await page.locator(".description strong").innerText()) === "app", "the description is rendered from Markdown");
  await page.getByRole("link", { name: "Settings" }).click();
  await page.waitForURL(/tab=settings/);
  await page.getByLabel("Kind").selectOption("robot");
  await page.getByLabel("Name", { exact: true }).fill("uiorg+deployer");
  await page.getByLabel("Role", { exact: true }).selectOption("write");
  await page.getByRole("button", { name: "Add permission" }).click();
  await page.waitForURL(/tab=settings/);
  await page.getByRole("button", { name: "Remove uiorg+deployer" }).waitFor();
  await audit(page, "repository settings");

  step = "the effective-permissions view shows who may do what and why";
  await page.getByRole("link", { name: "Who has access" }).click();
  await page.waitForURL(/tab=access/);
  const cells = async (who) =>
    (await page.locator("#effective tbody tr", { has: page.getByRole("rowheader", { name: who, exact: true }) })
      .locator("td").allInnerTexts()).map((t) => t.trim());
  let robot = await cells("uiorg+deployer");
  check(robot[1] === "write" && robot[3] === "yes" && robot[4] === "no", `robot may push: ${robot}`);
  check(robot[5].includes("granted write"), `robot's reason: ${robot}`);
  const me = await cells(user);
  check(me[1] === "admin" && me[5].includes("admin team"), `the org's creator administers it through its team: ${me}`);
  await audit(page, "who has access");

  step = "change a permission and see the effective-permissions view change";
  await page.goto("/repository/uiorg/app?tab=settings");
  await page.getByLabel("Role of uiorg+deployer").selectOption("read");
  await page.getByRole("button", { name: "Change role of uiorg+deployer" }).click();
  await page.waitForURL(/tab=settings/);
  await page.goto("/repository/uiorg/app?tab=access");
  robot = await cells("uiorg+deployer");
  check(robot[1] === "read" && robot[2] === "yes" && robot[3] === "no", `robot may pull, not push: ${robot}`);
  const csv = await (await page.request.get("/repository/uiorg/app?tab=access&format=csv")).text();
  check(csv.includes("uiorg+deployer,robot,read,yes,no,no,granted read"), `CSV export:\n${csv}`);

  step = "the repository's log shows what happened, with its chart";
  await page.goto("/repository/uiorg/app?tab=logs");
  await page.locator("#logs svg").waitFor();
  await expectText(page, "create_repo");
  await expectText(page, "change_repo_permission");
  await audit(page, "repository logs");

  step = "account settings: an app-specific token with its login line";
  await page.getByRole("link", { name: user, exact: true }).click();
  await page.waitForURL(`**/user/${user}?tab=settings`);
  await audit(page, "account settings");
  await page.getByLabel("Title of a new token").fill("laptop");
  await page.getByRole("button", { name: "Create token" }).click();
  await page.waitForURL(`**/user/${user}/tokens/**`);
  const appToken = (await page.locator("#app-token").innerText()).trim();
  check(appToken.length >= 32, `an app token, got ${JSON.stringify(appToken)}`);
  await expectText(page, `podman login --tls-verify=false -u '${user}' -p '${appToken}'`);
  await audit(page, "app token");

  step = "the pushed tag appears";
  await page.goto(`/repository/${demo}?tab=tags`);
  await page.getByRole("link", { name: "1.0", exact: true }).waitFor();
  await audit(page, "tags tab");
  await page.getByRole("link", { name: "1.0", exact: true }).click();
  await page.waitForURL(`**/repository/${demo}/tag/1.0`);
  await expectText(page, "Layers");
  await audit(page, "tag page");

  step = "a vulnerable image: the tag list's severity bar, its Security and Packages tabs, the search";
  await page.goto(`/repository/${scanned}?tab=tags`);
  await page.getByRole("link", { name: "1 vulnerability, worst High" }).click();
  await page.waitForURL(/tab=security/);
  await expectText(page, "GHSA-35jh-r3h4-6jhm");
  await expectText(page, "4.17.21");
  await audit(page, "security tab");
  await page.getByLabel("Severity at least").selectOption("Critical");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/severity=Critical/);
  await expectText(page, "0 of 1 vulnerabilities");
  await page.getByRole("link", { name: "Packages", exact: true }).click();
  await page.waitForURL(/tab=packages/);
  await expectText(page, "lodash");
  await expectText(page, "SPDX 2.3 (JSON)");
  await audit(page, "packages tab");
  await page.goto("/security/search?vulnerability=CVE-2021-23337");
  await page.getByRole("link", { name: scanned, exact: true }).waitFor();
  await audit(page, "vulnerability search");

  step = "delete a tag and restore it from history";
  await page.goto(`/repository/${demo}?tab=tags`);
  await page.getByRole("button", { name: "Delete 1.0" }).click();
  await page.waitForURL(/tab=history&tag=1\.0/);
  await audit(page, "tag history");
  // The restore answers with the same history URL the page is on: wait for the POST itself.
  await Promise.all([
    page.waitForResponse((r) => r.url().includes("/tag/1.0/restore") && r.request().method() === "POST"),
    page.getByRole("button", { name: "Restore 1.0 to this" }).first().click(),
  ]);
  await page.waitForLoadState();
  await page.goto(`/repository/${demo}?tab=tags`);
  await page.getByRole("link", { name: "1.0", exact: true }).waitFor();

  step = `filter, sort and page ${manyTags} tags`;
  let t0 = Date.now();
  await page.goto(`/repository/${many}?tab=tags`);
  timings.tagsFirstPageMs = Date.now() - t0;
  await expectText(page, `${manyTags} tags`);
  await page.getByRole("link", { name: "t000000", exact: true }).waitFor();
  t0 = Date.now();
  await page.getByRole("link", { name: "Next page" }).click();
  await page.waitForURL(/after=t000049/);
  timings.tagsNextPageMs = Date.now() - t0;
  await page.getByRole("link", { name: "t000050", exact: true }).waitFor();
  await page.goBack();
  await page.waitForURL((u) => !u.search.includes("after="));
  await page.getByRole("link", { name: "t000000", exact: true }).waitFor();
  const last = `t${String(manyTags - 1).padStart(6, "0")}`;
  await page.getByLabel("Tag name contains").fill(last);
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(new RegExp(`filter=${last}`));
  await expectText(page, `1 tag containing`);
  await page.getByLabel("Tag name contains").fill("");
  await page.getByLabel("Sort by").selectOption("newest");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/sort=newest/);
  await page.getByRole("link", { name: last, exact: true }).waitFor();

  step = "a form posted from another site is refused";
  const stolen = await page.locator('input[name="csrf"]').first().inputValue();
  await context.route("http://evil.test/**", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<!doctype html><title>evil</title><form method="post" action="${base}/repository/${demo}/tag/1.0/delete">
        <input type="hidden" name="csrf" value="${stolen}"><button>Win a prize</button></form>`,
    }),
  );
  const evil = await context.newPage();
  await evil.goto("http://evil.test/");
  const [resp] = await Promise.all([
    evil.waitForResponse((r) => r.url().includes("/tag/1.0/delete")),
    evil.getByRole("button", { name: "Win a prize" }).click(),
  ]);
  check(resp.status() === 403, `a cross-site post answers 403, got ${resp.status()}`);
  await page.goto(`/repository/${demo}?tab=tags`);
  await page.getByRole("link", { name: "1.0", exact: true }).waitFor();

  step = "delete every tag matching a filter, after a preview";
  await page.goto(`/repository/${many}?tab=tags&filter=t00001`);
  await expectText(page, "10 tags containing");
  await page.getByRole("link", { name: "Delete all 10 matching…" }).click();
  await page.waitForURL(/confirm=delete/);
  await expectText(page, "Delete 10 tags?");
  await audit(page, "bulk deletion preview");
  await page.getByRole("button", { name: "Delete 10 tags" }).click();
  await page.waitForURL(/tab=history/);
  await page.goto(`/repository/${many}?tab=tags`);
  await expectText(page, `${manyTags - 10} tags`);

  step = "the mirroring, cache and organization mirror settings read and pass the audit";
  await page.goto(`/repository/${demo}?tab=mirroring`);
  await expectText(page, "Mirror another registry's repository here");
  await audit(page, "mirroring tab");
  await page.goto("/organization/uiorg?tab=cache");
  await expectText(page, "This organization is no cache.");
  await audit(page, "cache tab");
  await page.goto("/organization/uiorg?tab=mirror");
  await expectText(page, "Mirror every repository of a namespace");
  await audit(page, "organization mirror tab");

  step = "a policy form previews what it protects as you type, then saves";
  await page.goto(`/repository/${demo}?tab=policies`);
  await page.getByLabel("Tag pattern (regular expression)").fill("^1\\.");
  await page.locator("#imm-preview", { hasText: "Protects 1 of 1 live tags" }).waitFor();
  check(page.url().endsWith("tab=policies"), `typing keeps the page's URL: ${page.url()}`);
  await audit(page, "policies");
  await page.getByRole("button", { name: "Add immutability policy" }).click();
  await page.getByRole("button", { name: "Remove policy ^1\\." }).waitFor();
  await page.goto(`/repository/${demo}?tab=tags`);
  await expectText(page, "immutable");
  await page.goto(`/repository/${demo}?tab=policies`);
  await page.getByRole("button", { name: "Remove policy ^1\\." }).click();
  await page.getByText("None here.").first().waitFor();

  step = "a webhook notification from the Notifications tab: its secret once, its page, a test";
  await page.goto(`/repository/${demo}?tab=notifications`);
  await expectText(page, "No notifications yet.");
  await audit(page, "notifications tab");
  await page.getByLabel("Title (optional)").fill("CI hook");
  await page.getByLabel("URL (webhook, Slack)").fill("https://ci.invalid/hook");
  await page.getByRole("button", { name: "Create notification" }).click();
  await page.locator("#notification-secret").waitFor();
  await audit(page, "notification created");
  await page.getByRole("button", { name: "Send a test" }).click();
  await page.getByRole("heading", { name: "Deliveries" }).waitFor();
  await page.goto(`/repository/${demo}?tab=notifications`);
  await page.getByRole("link", { name: "CI hook" }).click();
  check((await page.locator("#notification-secret").count()) === 0, "the secret is shown only once");
  await audit(page, "notification page");

  step = "the superuser panel: users, logs, storage and garbage collection";
  const suContext = await browser.newContext({ baseURL: base });
  const su = await suContext.newPage();
  su.setDefaultTimeout(15000);
  await su.goto("/signin");
  await su.getByLabel("Username").fill(process.env.ADMIN_NAME);
  await su.getByLabel("Password").fill(process.env.ADMIN_PASS);
  await su.getByRole("button", { name: "Sign in" }).click();
  await su.waitForURL("**/repository");
  await su.getByRole("link", { name: "Superuser" }).click();
  await su.waitForURL("**/superuser");
  await su.getByRole("button", { name: `Disable ${user}` }).waitFor();
  await audit(su, "superuser users");
  await su.getByRole("link", { name: "Storage and health" }).click();
  // The run answers when it is done (a pass over 100,000 tags takes a while); the background
  // collector may have run just before, so the page's "Last run" proves nothing by itself.
  const [ran] = await Promise.all([
    su.waitForResponse((r) => r.url().endsWith("/superuser/gc") && r.request().method() === "POST", { timeout: 180000 }),
    su.getByRole("button", { name: "Run garbage collection now" }).click(),
  ]);
  check(ran.status() < 400, `the run succeeds: ${ran.status()}`);
  await su.waitForURL(/tab=storage/);
  await audit(su, "superuser storage");
  await su.goto("/superuser?tab=logs&kind=gc_run");
  await expectText(su, "1 entry from");
  await audit(su, "superuser logs");
  await suContext.close();

  if (shots) {
    step = "screenshots";
    for (const scheme of ["light", "dark"]) {
      const ctx = await browser.newContext({ baseURL: base, colorScheme: scheme, viewport: { width: 1280, height: 800 } });
      const p = await ctx.newPage();
      await p.goto("/signin");
      await p.screenshot({ path: path.join(shots, `signin-${scheme}.png`) });
      await p.getByLabel("Username").fill(user);
      await p.getByLabel("Password").fill(password);
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.waitForURL("**/repository");
      await p.screenshot({ path: path.join(shots, `repositories-${scheme}.png`), fullPage: true });
      await p.goto(`/repository/${many}?tab=tags`);
      await p.screenshot({ path: path.join(shots, `tags-${scheme}.png`) });
      await p.goto(`/repository/${demo}`);
      await p.screenshot({ path: path.join(shots, `repository-${scheme}.png`), fullPage: true });
      await p.goto(`/repository/${demo}/tag/1.0`);
      await p.screenshot({ path: path.join(shots, `tag-${scheme}.png`), fullPage: true });
      await p.goto("/organization/uiorg?tab=teams");
      await p.screenshot({ path: path.join(shots, `organization-${scheme}.png`), fullPage: true });
      await p.goto("/repository/uiorg/app?tab=access");
      await p.screenshot({ path: path.join(shots, `access-${scheme}.png`), fullPage: true });
      await p.goto("/repository/uiorg/app?tab=logs");
      await p.screenshot({ path: path.join(shots, `logs-${scheme}.png`), fullPage: true });
      await p.goto(`/user/${user}?tab=settings`);
      await p.screenshot({ path: path.join(shots, `settings-${scheme}.png`), fullPage: true });
      await p.goto(`/repository/${demo}?tab=notifications`);
      await p.screenshot({ path: path.join(shots, `notifications-${scheme}.png`), fullPage: true });
      await ctx.close();
    }
    const phone = await browser.newContext({ baseURL: base, viewport: { width: 390, height: 844 }, isMobile: true });
    const p = await phone.newPage();
    await p.goto("/signin");
    await p.getByLabel("Username").fill(user);
    await p.getByLabel("Password").fill(password);
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.waitForURL("**/repository");
    await p.goto(`/repository/${many}?tab=tags`);
    await p.screenshot({ path: path.join(shots, "tags-phone.png"), fullPage: false });
    await phone.close();
  }
  console.log(JSON.stringify({ ok: true, timings, a11y }));
} catch (e) {
  console.error(`FAILED at "${step}": ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
