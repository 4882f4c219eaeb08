// Verifies one webhook delivery with the Standard Webhooks JavaScript library.
//
// Usage: node verify.mjs SECRET WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < raw-body
// Prints "verified" and exits 0, or prints why not and exits 1 (2: no library).

let Webhook;
try {
  ({ Webhook } = await import("standardwebhooks"));
} catch (missing) {
  console.error(`the standardwebhooks package is not installed (${missing.message}): npm ci in tests/standardwebhooks`);
  process.exit(2);
}

const [secret, id, timestamp, signature] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const body = Buffer.concat(chunks).toString("utf8");

try {
  new Webhook(secret).verify(body, {
    "webhook-id": id,
    "webhook-timestamp": timestamp,
    "webhook-signature": signature,
  });
} catch (refused) {
  console.log(`not verified: ${refused.message}`);
  process.exit(1);
}
console.log("verified");
