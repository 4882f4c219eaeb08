// A Hookdeck user's flows, run with Hookdeck's own TypeScript SDK against
// hookgate (tests/gateway/hookdeck_sdk.rs starts the gateway and a sink and
// runs this). Every answer is checked against the SDK's own response schema
// (the SDK skips that check by default; a client in a stricter language would
// not), so a missing or mistyped field fails its step.
//
// Usage: node flows.js API_BASE_URL API_KEY SINK_URL
// Prints one JSON object: { steps: [{ step, ok, error? }] }.

"use strict";

const { HookdeckClient } = require("@hookdeck/sdk");
const serializers = require("@hookdeck/sdk/serialization");

const [apiBase, apiKey, sinkUrl] = process.argv.slice(2);

strictResponseSchemas();

const hookdeck = new HookdeckClient({ token: apiKey, environment: `${apiBase}/2024-03-01` });
const steps = [];
const state = {};

/**
 * Where the SDK's generated schema is stricter than the reference it was made
 * from: a request's `rejection_cause` is a non-null string there, while the
 * reference's own examples (and Hookdeck) show `null` for an accepted request.
 */
const FORGIVEN = [{ field: "rejection_cause", message: "Expected string. Received null." }];

function forgiven(error) {
  const field = error.path[error.path.length - 1];
  return FORGIVEN.some((f) => f.field === field && f.message === error.message);
}

/** Every response schema of the SDK, made to validate what it parses. */
function strictResponseSchemas() {
  for (const schema of Object.values(serializers)) {
    if (schema && typeof schema.parseOrThrow === "function") {
      const lenient = schema.parseOrThrow.bind(schema);
      schema.parseOrThrow = async (raw, options) => {
        try {
          return await lenient(raw, { ...options, skipValidation: false });
        } catch (error) {
          if (!Array.isArray(error.errors) || !error.errors.every(forgiven)) {
            throw error;
          }
          return lenient(raw, options);
        }
      };
    }
  }
}

/** Runs one step; later steps that need what it returns are skipped if it fails. */
async function step(name, run) {
  try {
    const result = await run();
    steps.push({ step: name, ok: true });
    return result;
  } catch (error) {
    const detail = error.body ? JSON.stringify(error.body) : String(error.message || error);
    steps.push({ step: name, ok: false, error: detail.slice(0, 600) });
    return undefined;
  }
}

function need(value, what) {
  if (value === undefined || value === null) {
    throw new Error(`skipped: ${what} is missing (an earlier step failed)`);
  }
  return value;
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/** Polls `probe` until it returns a value, for up to 20 s. */
async function eventually(what, probe) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const value = await probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function configuration() {
  state.source = await step("source.create", () =>
    hookdeck.source.create({ name: "sdk-shop", description: "orders from the shop" }));
  await step("source.retrieve", async () => {
    const source = await hookdeck.source.retrieve(need(state.source, "source").id);
    check(source.name === "sdk-shop", "retrieved another source");
    check(/^https?:\/\//.test(source.url), `source.url is not absolute: ${source.url}`);
  });
  await step("source.list", async () => {
    const page = await hookdeck.source.list({ name: "sdk-shop", limit: 10 });
    check(page.models.length === 1, `expected 1 source, got ${page.models.length}`);
  });
  await step("source.update", () =>
    hookdeck.source.update(need(state.source, "source").id, { description: "updated" }));
  await step("source.upsert", () =>
    hookdeck.source.upsert({ name: "sdk-shop", description: "upserted" }));

  state.destination = await step("destination.create", () =>
    hookdeck.destination.create({ name: "sdk-sink", url: sinkUrl }));
  await step("destination.retrieve", () =>
    hookdeck.destination.retrieve(need(state.destination, "destination").id));
  await step("destination.list", () => hookdeck.destination.list({ name: "sdk-sink" }));
  await step("destination.update", () =>
    hookdeck.destination.update(need(state.destination, "destination").id, {
      rateLimit: 10,
      rateLimitPeriod: "second",
    }));
  await step("destination.upsert", () =>
    hookdeck.destination.upsert({ name: "sdk-sink", url: sinkUrl }));

  const code = "addHandler('transform', (request, context) => { request.body.seen = true; return request; });";
  state.transformation = await step("transformation.create", () =>
    hookdeck.transformation.create({ name: "sdk-mark", code }));
  await step("transformation.list", () => hookdeck.transformation.list({ name: "sdk-mark" }));
  await step("transformation.retrieve", () =>
    hookdeck.transformation.retrieve(need(state.transformation, "transformation").id));
  await step("transformation.update", () =>
    hookdeck.transformation.update(need(state.transformation, "transformation").id, { code }));
  await step("transformation.upsert", () =>
    hookdeck.transformation.upsert({ name: "sdk-mark", code }));
  await step("transformation.run", async () => {
    const run = await hookdeck.transformation.run({
      code,
      request: { headers: { "content-type": "application/json" }, body: { order: 1 } },
    });
    check(run.request && run.request.body && run.request.body.seen === true, "the code did not run");
  });

  state.connection = await step("connection.create", () =>
    hookdeck.connection.create({
      name: "sdk-orders",
      sourceId: need(state.source, "source").id,
      destinationId: need(state.destination, "destination").id,
      rules: [
        { type: "transform", transformationId: need(state.transformation, "transformation").id },
        { type: "retry", strategy: "linear", count: 3, interval: 1000 },
      ],
    }));
  await step("connection.upsert", () =>
    hookdeck.connection.upsert({
      name: "sdk-audit",
      source: { name: "sdk-audit-in" },
      destination: { name: "sdk-audit-out", url: sinkUrl },
    }));
  await step("connection.list", async () => {
    const page = await hookdeck.connection.list({ sourceId: need(state.source, "source").id });
    check(page.models.length === 1, `expected 1 connection of sdk-shop, got ${page.models.length}`);
  });
  await step("connection.count", () => hookdeck.connection.count());
  await step("connection.retrieve", async () => {
    const connection = await hookdeck.connection.retrieve(need(state.connection, "connection").id);
    check(connection.source.name === "sdk-shop", "the connection's source is not embedded");
  });
  await step("connection.update", () =>
    hookdeck.connection.update(need(state.connection, "connection").id, { description: "orders" }));
}

async function traffic() {
  const source = need(state.source, "source");
  const url = (await hookdeck.source.retrieve(source.id)).url;
  const sent = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ order: 42 }),
  });
  check(sent.ok, `the source answered ${sent.status}`);
  state.request = await step("request.list", () =>
    eventually("the request", async () => {
      const page = await hookdeck.request.list({ sourceId: source.id });
      return page.models[0];
    }));
  await step("request.retrieve", () => hookdeck.request.retrieve(need(state.request, "request").id));
  await step("request.retrieveBody", () =>
    hookdeck.request.retrieveBody(need(state.request, "request").id));
  state.event = await step("request.listEvent", () =>
    eventually("the event", async () => {
      const page = await hookdeck.request.listEvent(need(state.request, "request").id);
      return page.models[0];
    }));
  await step("request.listIgnoredEvent", () =>
    hookdeck.request.listIgnoredEvent(need(state.request, "request").id));
  await step("event.list (delivered)", () =>
    eventually("a successful event", async () => {
      const page = await hookdeck.event.list({ sourceId: source.id, status: "SUCCESSFUL" });
      return page.models[0];
    }));
  await step("event.retrieve", async () => {
    const event = await hookdeck.event.retrieve(need(state.event, "event").id, { include: "data" });
    state.eventDataId = event.eventDataId;
  });
  await step("event.retrieveBody", () => hookdeck.event.retrieveBody(need(state.event, "event").id));
  state.attempt = await step("attempt.list", async () => {
    const page = await hookdeck.attempt.list({ eventId: need(state.event, "event").id });
    return page.models[0];
  });
  await step("attempt.retrieve", () => hookdeck.attempt.retrieve(need(state.attempt, "attempt").id));
  await step("event.retry", async () => {
    const retried = await hookdeck.event.retry(need(state.event, "event").id);
    check(retried.attempt && retried.event, "retry answers {event, attempt}");
  });
  await step("request.retry", () =>
    hookdeck.request.retry(need(state.request, "request").id, {
      webhookIds: [need(state.connection, "connection").id],
    }));
  await step("event.mute", () => hookdeck.event.mute(need(state.event, "event").id));
  await step("connection.pause", () => hookdeck.connection.pause(need(state.connection, "connection").id));
  await step("connection.unpause", () =>
    hookdeck.connection.unpause(need(state.connection, "connection").id));
  await step("transformation.listExecution", () =>
    hookdeck.transformation.listExecution(need(state.transformation, "transformation").id));
}

async function operations() {
  state.bulk = await step("eventBulkRetry.create", () =>
    hookdeck.eventBulkRetry.create({ query: { status: "SUCCESSFUL", createdAt: { gte: new Date(Date.now() - 3600e3) } } }));
  await step("eventBulkRetry.plan", () => hookdeck.eventBulkRetry.plan());
  await step("eventBulkRetry.list", () => hookdeck.eventBulkRetry.list());
  await step("eventBulkRetry.retrieve", () =>
    hookdeck.eventBulkRetry.retrieve(need(state.bulk, "bulk retry").id));
  await step("requestBulkRetry.list", () => hookdeck.requestBulkRetry.list());
  await step("ignoredEventBulkRetry.list", () => hookdeck.ignoredEventBulkRetry.list());

  state.bookmark = await step("bookmark.create", () =>
    hookdeck.bookmark.create({
      eventDataId: need(state.eventDataId, "event_data_id"),
      webhookId: need(state.connection, "connection").id,
      label: "an order",
      name: "order-42",
    }));
  await step("bookmark.list", () => hookdeck.bookmark.list());
  await step("bookmark.retrieve", () => hookdeck.bookmark.retrieve(need(state.bookmark, "bookmark").id));
  await step("bookmark.update", () =>
    hookdeck.bookmark.update(need(state.bookmark, "bookmark").id, { label: "the order" }));
  await step("bookmark.retrieveBody", () =>
    hookdeck.bookmark.retrieveBody(need(state.bookmark, "bookmark").id));
  await step("bookmark.trigger", async () => {
    const events = await hookdeck.bookmark.trigger(need(state.bookmark, "bookmark").id, { target: "http" });
    check(Array.isArray(events), "trigger answers an array of events");
  });
  await step("bookmark.delete", () => hookdeck.bookmark.delete(need(state.bookmark, "bookmark").id));

  state.trigger = await step("issueTrigger.create", () =>
    hookdeck.issueTrigger.create({
      type: "delivery",
      configs: { strategy: "first_attempt", connections: "*" },
      channels: { email: {} },
    }));
  await step("issueTrigger.list", () => hookdeck.issueTrigger.list());
  await step("issueTrigger.retrieve", () =>
    hookdeck.issueTrigger.retrieve(need(state.trigger, "issue trigger").id));
  await step("issueTrigger.update", () =>
    hookdeck.issueTrigger.update(need(state.trigger, "issue trigger").id, { name: "sdk-failures" }));
  await step("issueTrigger.upsert", () =>
    hookdeck.issueTrigger.upsert({
      name: "sdk-failures",
      type: "delivery",
      configs: { strategy: "final_attempt", connections: "*" },
      channels: { email: {} },
    }));
  await step("issueTrigger.disable", () =>
    hookdeck.issueTrigger.disable(need(state.trigger, "issue trigger").id));
  await step("issueTrigger.enable", () =>
    hookdeck.issueTrigger.enable(need(state.trigger, "issue trigger").id));
  await step("issue.list", () => hookdeck.issue.list());
  await step("issue.count", () => hookdeck.issue.count());
  await step("notification.update", () =>
    hookdeck.notification.update({
      enabled: true,
      topics: ["issue.opened"],
      sourceId: need(state.source, "source").id,
    }));
  await step("issueTrigger.delete", () =>
    hookdeck.issueTrigger.delete(need(state.trigger, "issue trigger").id));
}

async function teardown() {
  const connection = need(state.connection, "connection").id;
  await step("connection.disable", () => hookdeck.connection.disable(connection));
  await step("connection.enable", () => hookdeck.connection.enable(connection));
  await step("connection.delete", () => hookdeck.connection.delete(connection));
  const source = need(state.source, "source").id;
  await step("source.disable", () => hookdeck.source.disable(source));
  await step("source.enable", () => hookdeck.source.enable(source));
  const destination = need(state.destination, "destination").id;
  await step("destination.disable", () => hookdeck.destination.disable(destination));
  await step("destination.enable", () => hookdeck.destination.enable(destination));
}

(async () => {
  for (const part of [configuration, traffic, operations, teardown]) {
    await step(part.name, part);
  }
  process.stdout.write(JSON.stringify({ steps }) + "\n");
})();
