// Two runs of one thread against /api/agents/AgentChat/agui with the real @ag-ui/client HttpAgent (its event
// verification on): prints what the client saw as one JSON line. Usage: node agui-client.js <url> <threadId>
'use strict';
const { HttpAgent } = require('@ag-ui/client');

async function run(agent, runId) {
  const events = [];
  let outcome = null;
  let failed = null;
  const result = await agent.runAgent({ runId }, {
    onEvent: ({ event }) => { events.push(event.type); },
    onRunFinishedEvent: (p) => { outcome = p.outcome; },
    onRunFailed: ({ error }) => { failed = String(error && error.message || error); },
  });
  return { events, outcome, failed, newMessages: result.newMessages.map((m) => ({ role: m.role, content: m.content })) };
}

(async () => {
  const [url, threadId] = process.argv.slice(2);
  const agent = new HttpAgent({ url, threadId, initialMessages: [{ id: 'u1', role: 'user', content: 'Hello from the AG-UI client.' }] });
  const first = await run(agent, 'run-1');
  agent.addMessage({ id: 'u2', role: 'user', content: 'And a second question.' });
  const second = await run(agent, 'run-2');
  console.log(JSON.stringify({ first, second, messages: agent.messages.map((m) => ({ role: m.role, content: m.content })) }));
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
