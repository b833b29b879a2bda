// A Durable Task worker and client from the JavaScript SDK (@microsoft/durabletask-js) against the
// DurableAgents gRPC endpoint: a JS orchestration calls a JS activity and the host's own SayHello.
// Usage: NODE_PATH=<node_modules> node hello.js 127.0.0.1:4001   (prints one JSON line; exit code 0 when it completed)
const { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, NoOpLogger } = require("@microsoft/durabletask-js");

const address = process.argv[2];

async function jsHello(_ctx, city) {
  return `Hola, ${city}!`;
}

const jsCities = async function* jsCities(ctx, cities) {
  const out = [];
  for (const city of cities) {
    out.push(yield ctx.callActivity(jsHello, city));
  }
  out.push(yield ctx.callActivity("SayHello", "from JavaScript"));
  return out;
};

async function main() {
  const worker = new TaskHubGrpcWorker({ hostAddress: address, logger: new NoOpLogger() });
  worker.addOrchestrator(jsCities);
  worker.addActivity(jsHello);
  await worker.start();
  const client = new TaskHubGrpcClient({ hostAddress: address, logger: new NoOpLogger() });
  try {
    const id = await client.scheduleNewOrchestration(jsCities, ["Lima", "Oslo"]);
    const state = await client.waitForOrchestrationCompletion(id, true, 60);
    const ok = state && state.runtimeStatus === OrchestrationStatus.COMPLETED;
    console.log(JSON.stringify({ id, status: state ? OrchestrationStatus[state.runtimeStatus] : null, output: state ? state.serializedOutput : null, failure: state && state.failureDetails ? state.failureDetails.message : null }));
    process.exitCode = ok ? 0 : 1;
  } finally {
    await client.stop();
    await worker.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
