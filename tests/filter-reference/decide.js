// Reads JSON lines {"filter": …, "value": …} on stdin and prints, for each,
// one line "true" or "false": what Hookdeck's filter engine decides.
'use strict';
const readline = require('readline');
const match = require('simple-json-match').default;

const lines = readline.createInterface({ input: process.stdin });
const out = [];
lines.on('line', (line) => {
  const { filter, value } = JSON.parse(line);
  out.push(String(match(value, filter)));
});
lines.on('close', () => process.stdout.write(out.join('\n') + '\n'));
