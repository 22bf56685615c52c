// llama.cpp through node-llama-cpp's prebuilt CPU binary (scripts/llamacpp.sh installs it): greedy tokens/s of one
// stream and of N concurrent sequences on a GGUF, for benchmarks/serve.py to compare in the same run.
// node benchmarks/llamacpp_bench.mjs MODEL.gguf [max_tokens] [concurrent] [threads]
import {getLlama} from "node-llama-cpp";
const [modelPath, maxTokens = "128", concurrent = "8", threads = "2"] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const prompts = [
  "Write a short blog post about why small incremental backfills beat nightly batch jobs.",
  "Explain how a hash table handles collisions, in a friendly tone.",
  "Describe your favourite debugging technique and why it works.",
  "Write a LinkedIn post about learning Rust after ten years of Python.",
  "What makes a good code review? Give three concrete habits.",
  "Write a short note on caching HTTP responses in a CLI tool.",
  "Tell the story of the worst production outage you remember.",
  "Why do tests that sleep become flaky? Suggest alternatives.",
];
const chat = (p) => `<|im_start|>user\n${p}<|im_end|>\n<|im_start|>assistant\n`;
async function run(seq, prompt, limit) {
  const tokens = model.tokenize(chat(prompt), true);
  let n = 0, first = null; const t0 = performance.now();
  for await (const _ of seq.evaluate(tokens, {temperature: 0})) {
    if (first === null) first = performance.now() - t0;
    if (++n >= limit) break;
  }
  return {n, s: (performance.now() - t0) / 1000, ttft_s: first / 1000};
}
const limit = Number(maxTokens), conc = Number(concurrent);
const ctx1 = await model.createContext({contextSize: 1024, sequences: 1, threads: Number(threads)});
const seq1 = ctx1.getSequence();
await run(seq1, prompts[0], 8);  // warm-up
await seq1.clearHistory();
const singles = [];
for (const p of prompts.slice(0, 3)) { singles.push(await run(seq1, p, limit)); await seq1.clearHistory(); }
await ctx1.dispose();
const ctxN = await model.createContext({contextSize: 1024 * conc, sequences: conc, threads: Number(threads)});
const t0 = performance.now();
const rows = await Promise.all(prompts.slice(0, conc).map((p) => run(ctxN.getSequence(), p, limit)));
const wall = (performance.now() - t0) / 1000;
const single = singles.reduce((a, r) => a + r.n, 0) / singles.reduce((a, r) => a + r.s, 0);
console.log(JSON.stringify({engine: "llama.cpp (node-llama-cpp prebuilt CPU)", model: modelPath, threads: Number(threads),
  single_stream_tok_s: single, idle_ttft_s: singles.map((r) => r.ttft_s),
  concurrent: conc, aggregate_tok_s: rows.reduce((a, r) => a + r.n, 0) / wall, tokens_per_request: limit}));
