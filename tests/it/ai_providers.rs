//! The LLM providers against local fake servers that speak each API's wire
//! format (requests recorded, responses scripted), errors and streams included.

use std::time::Duration;

use heatcheck::ai::provider::{
    chat, AiError, ApiKey, ChatRequest, ChatResponse, Message, ProviderConfig, ProviderKind, Usage,
};
use serde_json::{json, Value};

use fake::{FakeServer, Reply};

/// Whether an error is the one a case expects.
type Check = fn(&AiError) -> bool;

const KEY: &str = "sk-test-secret-key-123456";

use crate::common::fake_provider as fake;

fn client() -> reqwest::Client {
    heatcheck::commands::install_crypto();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "scenarios": {"type": "array", "items": {"$ref": "#/$defs/Scenario"}}
        },
        "required": ["scenarios"],
        "$defs": {
            "Scenario": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"}
                },
                "required": ["name"]
            }
        }
    })
}

fn request() -> ChatRequest {
    ChatRequest {
        system: Some("You are a Kubernetes networking expert.".into()),
        messages: vec![Message::user("Give me 1 scenario.")],
        schema: schema(),
        schema_name: "scenarios".into(),
    }
}

fn answer() -> Value {
    json!({"scenarios": [{"name": "recreate route"}]})
}

fn cfg(kind: ProviderKind, server: &FakeServer) -> ProviderConfig {
    let base = match kind {
        ProviderKind::OpenAi => format!("{}/v1", server.url),
        _ => server.url.clone(),
    };
    let mut c = ProviderConfig::new(kind, base, "test-model");
    if kind != ProviderKind::Ollama {
        c.api_key = Some(ApiKey::new(KEY));
    }
    c.max_tokens = 1000;
    c.timeout = Duration::from_secs(5);
    c.retry_base = Duration::from_millis(5);
    c.retry_cap = Duration::from_millis(20);
    c
}

async fn run(
    kind: ProviderKind,
    script: Vec<Reply>,
) -> (Result<ChatResponse, AiError>, FakeServer) {
    run_with(kind, script, |_| {}).await
}

async fn run_with(
    kind: ProviderKind,
    script: Vec<Reply>,
    tweak: impl FnOnce(&mut ProviderConfig),
) -> (Result<ChatResponse, AiError>, FakeServer) {
    let server = FakeServer::start(script).await;
    let mut c = cfg(kind, &server);
    tweak(&mut c);
    let res = chat(&client(), &c, &request()).await;
    (res, server)
}

fn assert_no_key(e: &AiError) {
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains(KEY) && !text.contains("secret-key"),
        "the key leaked: {text}"
    );
}

// ---------------------------------------------------------------- Anthropic

fn anthropic_message(content: Value, stop: &str) -> Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "test-model",
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": 120, "output_tokens": 45}
    })
}

fn anthropic_ok() -> Reply {
    Reply::json(
        200,
        anthropic_message(
            json!([{"type": "tool_use", "id": "toolu_01", "name": "scenarios", "input": answer()}]),
            "tool_use",
        ),
    )
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_01"}),
    )
}

#[tokio::test]
async fn anthropic_success_sends_the_messages_api_shape() {
    let (res, server) = run_with(ProviderKind::Anthropic, vec![anthropic_ok()], |c| {
        c.temperature = Some(0.3);
        c.top_k = Some(40);
    })
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(serde_json::from_str::<Value>(&res.raw).unwrap(), answer());
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 120,
            output_tokens: 45
        }
    );
    assert_eq!(res.attempts, 1);

    let r = server.only_request();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        r.body,
        json!({
            "model": "test-model",
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": "Give me 1 scenario."}],
            "tools": [{
                "name": "scenarios",
                "description": "Return the answer as the `scenarios` object. Call this tool exactly once.",
                "input_schema": schema(),
            }],
            "tool_choice": {"type": "tool", "name": "scenarios"},
            "system": "You are a Kubernetes networking expert.",
            "temperature": 0.3,
            "top_k": 40,
        })
    );
}

#[tokio::test]
async fn anthropic_429_honours_retry_after_then_succeeds() {
    let (res, server) = run(
        ProviderKind::Anthropic,
        vec![
            anthropic_error(
                429,
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
            )
            .header("retry-after", "1"),
            anthropic_ok(),
        ],
    )
    .await;
    let res = res.unwrap();
    assert_eq!(res.attempts, 2);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    // The backoff alone would be <= 20 ms here; retry-after asked for 1 s.
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(900), "waited only {gap:?}");
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[tokio::test]
async fn anthropic_overloaded_529_is_retried_until_max_retries() {
    let overloaded = || anthropic_error(529, "overloaded_error", "Overloaded");
    let (res, server) = run(
        ProviderKind::Anthropic,
        vec![overloaded(), overloaded(), overloaded(), overloaded()],
    )
    .await;
    let err = res.unwrap_err();
    assert!(
        matches!(
            err,
            AiError::Server {
                status: 529,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn anthropic_401_is_unauthorized_without_retry_and_without_the_key() {
    let (res, server) = run(
        ProviderKind::Anthropic,
        vec![anthropic_error(
            401,
            "authentication_error",
            &format!("invalid x-api-key {KEY}"),
        )],
    )
    .await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, AiError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("ANTHROPIC_API_KEY"), "{err}");
    assert!(!err.is_unreachable());
    assert_no_key(&err);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn anthropic_answer_failures_are_typed() {
    let cases: Vec<(Reply, Check)> = vec![
        (
            Reply::json(
                200,
                anthropic_message(
                    json!([{"type": "tool_use", "id": "t", "name": "scenarios", "input": {"scenarios": []}}]),
                    "max_tokens",
                ),
            ),
            |e| matches!(e, AiError::Truncated { .. }),
        ),
        (
            Reply::json(
                200,
                anthropic_message(
                    json!([{"type": "text", "text": "I can't help with that."}]),
                    "refusal",
                ),
            ),
            |e| matches!(e, AiError::Refusal { message } if message.contains("can't help")),
        ),
        (
            Reply::json(200, anthropic_message(json!([]), "end_turn")),
            |e| matches!(e, AiError::Empty),
        ),
        (
            Reply::json(
                200,
                anthropic_message(
                    json!([{"type": "text", "text": "Here are your scenarios: ..."}]),
                    "end_turn",
                ),
            ),
            |e| matches!(e, AiError::NotJson { raw, .. } if raw.contains("Here are")),
        ),
        (
            Reply::json(
                200,
                anthropic_message(
                    json!([{"type": "tool_use", "id": "t", "name": "scenarios", "input": "oops"}]),
                    "tool_use",
                ),
            ),
            |e| matches!(e, AiError::Malformed { .. }),
        ),
        (Reply::text(200, "<html>proxy page</html>"), |e| {
            matches!(e, AiError::Malformed { .. })
        }),
        (
            anthropic_error(404, "not_found_error", "model: test-model"),
            |e| matches!(e, AiError::UnknownModel { model, .. } if model == "test-model"),
        ),
        (
            anthropic_error(
                400,
                "invalid_request_error",
                "prompt is too long: 208310 tokens > 200000 maximum",
            ),
            |e| matches!(e, AiError::ContextLength { .. }),
        ),
        (
            anthropic_error(
                400,
                "invalid_request_error",
                "tools.0.input_schema: JSON schema is invalid",
            ),
            |e| matches!(e, AiError::Rejected { status: 400, .. }),
        ),
    ];
    for (i, (reply, check)) in cases.into_iter().enumerate() {
        let (res, server) = run(ProviderKind::Anthropic, vec![reply]).await;
        let err = res.unwrap_err();
        assert!(check(&err), "case {i}: {err:?}");
        assert!(!err.is_unreachable(), "case {i}");
        assert_eq!(server.requests().len(), 1, "case {i}: no retry");
    }
}

#[tokio::test]
async fn anthropic_oversized_body_is_too_large() {
    let big = "x".repeat(20_000);
    let reply = Reply::json(
        200,
        anthropic_message(
            json!([{"type": "tool_use", "id": "t", "name": "scenarios", "input": {"pad": big}}]),
            "tool_use",
        ),
    );
    let (res, _server) = run_with(ProviderKind::Anthropic, vec![reply], |c| {
        c.max_response_bytes = 4096
    })
    .await;
    assert!(matches!(
        res.unwrap_err(),
        AiError::TooLarge { limit: 4096 }
    ));
}

fn sse(event: &str, data: Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn anthropic_stream(partials: &[&str], stop: &str, finish: bool) -> Vec<String> {
    let mut ev = vec![
        sse(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "test-model", "stop_reason": null, "usage": {"input_tokens": 200, "output_tokens": 1}}}),
        ),
        sse(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "scenarios", "input": {}}}),
        ),
        sse("ping", json!({"type": "ping"})),
    ];
    for p in partials {
        ev.push(sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}}),
        ));
    }
    if finish {
        ev.push(sse(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        ev.push(sse(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 30}}),
        ));
        ev.push(sse("message_stop", json!({"type": "message_stop"})));
    }
    ev
}

#[tokio::test]
async fn anthropic_stream_is_assembled() {
    let parts = ["{\"scenarios\": [{\"na", "me\": \"recreate", " route\"}]}"];
    let (res, server) = run_with(
        ProviderKind::Anthropic,
        vec![Reply::sse(&anthropic_stream(&parts, "tool_use", true))],
        |c| c.stream = true,
    )
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(res.raw, parts.concat());
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 200,
            output_tokens: 30
        }
    );
    assert_eq!(server.only_request().body["stream"], true);
}

#[tokio::test]
async fn anthropic_stream_cut_short_is_truncated() {
    let parts = ["{\"scenarios\": [{\"na"];
    let (res, _s) = run_with(
        ProviderKind::Anthropic,
        vec![Reply::sse(&anthropic_stream(&parts, "tool_use", false))],
        |c| c.stream = true,
    )
    .await;
    assert!(
        matches!(res.unwrap_err(), AiError::Truncated { reason, .. } if reason.contains("message_stop"))
    );

    let (res, _s) = run_with(
        ProviderKind::Anthropic,
        vec![Reply::sse(&anthropic_stream(&parts, "max_tokens", true))],
        |c| c.stream = true,
    )
    .await;
    assert!(
        matches!(res.unwrap_err(), AiError::Truncated { reason, .. } if reason.contains("max_tokens"))
    );
}

#[tokio::test]
async fn anthropic_stream_error_event_is_retried() {
    let mut broken = anthropic_stream(&[], "tool_use", false);
    broken.push(sse(
        "error",
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ));
    let ok = anthropic_stream(
        &["{\"scenarios\": [{\"name\": \"recreate route\"}]}"],
        "tool_use",
        true,
    );
    let (res, server) = run_with(
        ProviderKind::Anthropic,
        vec![Reply::sse(&broken), Reply::sse(&ok)],
        |c| c.stream = true,
    )
    .await;
    let res = res.unwrap();
    assert_eq!((res.value, res.attempts), (answer(), 2));
    assert_eq!(server.requests().len(), 2);
}

// ---------------------------------------------------------------- OpenAI

fn completion(content: Value, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null}, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102}
    })
}

fn openai_ok() -> Reply {
    Reply::json(200, completion(json!(answer().to_string()), "stop"))
}

fn openai_error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

#[tokio::test]
async fn openai_success_sends_chat_completions_shape() {
    let (res, server) = run_with(ProviderKind::OpenAi, vec![openai_ok()], |c| {
        c.temperature = Some(0.2);
        c.top_p = Some(0.9);
        c.top_k = Some(5);
    })
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(res.raw, answer().to_string());
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 90,
            output_tokens: 12
        }
    );

    let r = server.only_request();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    // The schema made strict: every property required, optional ones nullable, no extra properties.
    let strict_schema = json!({
        "type": "object",
        "properties": {"scenarios": {"type": "array", "items": {"$ref": "#/$defs/Scenario"}}},
        "required": ["scenarios"],
        "$defs": {"Scenario": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "description": {"type": ["string", "null"]}},
            "required": ["name", "description"],
            "additionalProperties": false
        }},
        "additionalProperties": false
    });
    assert_eq!(
        r.body,
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "You are a Kubernetes networking expert."},
                {"role": "user", "content": "Give me 1 scenario."}
            ],
            "max_tokens": 1000,
            "response_format": {"type": "json_schema", "json_schema": {"name": "scenarios", "strict": true, "schema": strict_schema}},
            "temperature": 0.2,
            "top_p": 0.9,
        })
    );
}

#[tokio::test]
async fn openai_strict_nulls_are_removed_from_the_answer() {
    let content = json!({"scenarios": [{"name": "a", "description": null}]}).to_string();
    let (res, _s) = run(
        ProviderKind::OpenAi,
        vec![Reply::json(200, completion(json!(content), "stop"))],
    )
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, json!({"scenarios": [{"name": "a"}]}));
    assert_eq!(res.raw, content, "raw stays as received");
}

#[tokio::test]
async fn openai_429_honours_retry_after_ms() {
    let (res, server) = run(
        ProviderKind::OpenAi,
        vec![
            openai_error(
                429,
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached",
            )
            .header("retry-after-ms", "300"),
            openai_ok(),
        ],
    )
    .await;
    assert_eq!(res.unwrap().attempts, 2);
    let reqs = server.requests();
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(250), "waited only {gap:?}");
}

#[tokio::test]
async fn openai_insufficient_quota_is_not_retried() {
    let (res, server) = run(
        ProviderKind::OpenAi,
        vec![
            openai_error(
                429,
                "insufficient_quota",
                Some("insufficient_quota"),
                "You exceeded your current quota",
            ),
            openai_ok(),
        ],
    )
    .await;
    let err = res.unwrap_err();
    assert!(
        matches!(err, AiError::RateLimited { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn openai_500s_give_server_error_after_max_retries_plus_one() {
    let e500 = || {
        openai_error(
            500,
            "server_error",
            None,
            "The server had an error while processing your request.",
        )
    };
    let (res, server) = run_with(ProviderKind::OpenAi, vec![e500(), e500(), e500()], |c| {
        c.max_retries = 2
    })
    .await;
    let err = res.unwrap_err();
    assert!(
        matches!(
            err,
            AiError::Server {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn openai_401_is_unauthorized_without_retry_and_without_the_key() {
    let masked = format!("Incorrect API key provided: {}****3456. You can find your API key at https://platform.openai.com/account/api-keys.", &KEY[..8]);
    let (res, server) = run(
        ProviderKind::OpenAi,
        vec![openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            &masked,
        )],
    )
    .await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, AiError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
    assert!(!err.to_string().contains(&KEY[..8]), "{err}");
    assert_no_key(&err);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn openai_answer_failures_are_typed() {
    let cases: Vec<(Reply, Check)> = vec![
        (Reply::json(200, completion(json!("{\"scenarios\": [oops"), "stop")), |e| matches!(e, AiError::NotJson { .. })),
        (Reply::json(200, completion(json!("[1, 2]"), "stop")), |e| matches!(e, AiError::NotJson { .. })),
        (Reply::json(200, completion(json!("{\"scenarios\": [{\"na"), "length")), |e| matches!(e, AiError::Truncated { .. })),
        (Reply::json(200, completion(json!(""), "content_filter")), |e| matches!(e, AiError::Refusal { .. })),
        (Reply::json(200, completion(json!(""), "stop")), |e| matches!(e, AiError::Empty)),
        (Reply::json(200, completion(Value::Null, "stop")), |e| matches!(e, AiError::Empty)),
        (
            openai_error(404, "invalid_request_error", Some("model_not_found"), "The model `test-model` does not exist or you do not have access to it."),
            |e| matches!(e, AiError::UnknownModel { .. }),
        ),
        (
            openai_error(400, "invalid_request_error", Some("context_length_exceeded"), "This model's maximum context length is 8192 tokens. However, your messages resulted in 8227 tokens. Please reduce the length of the messages."),
            |e| matches!(e, AiError::ContextLength { .. }),
        ),
    ];
    for (i, (reply, check)) in cases.into_iter().enumerate() {
        let (res, server) = run(ProviderKind::OpenAi, vec![reply]).await;
        let err = res.unwrap_err();
        assert!(check(&err), "case {i}: {err:?}");
        assert_eq!(server.requests().len(), 1, "case {i}: no retry");
    }
    let mut refusal = completion(Value::Null, "stop");
    refusal["choices"][0]["message"]["refusal"] = json!("I'm sorry, I cannot help with that.");
    let (res, _s) = run(ProviderKind::OpenAi, vec![Reply::json(200, refusal)]).await;
    assert!(
        matches!(res.unwrap_err(), AiError::Refusal { message } if message.contains("cannot help"))
    );
}

#[tokio::test]
async fn openai_oversized_body_is_too_large_even_without_content_length() {
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(50_000));
    let parts: Vec<String> = completion(json!(big), "stop")
        .to_string()
        .as_bytes()
        .chunks(1000)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let mut reply = Reply::sse(&parts);
    reply = reply.header("x-note", "chunked");
    let (res, _s) = run_with(ProviderKind::OpenAi, vec![reply], |c| {
        c.max_response_bytes = 8192
    })
    .await;
    assert!(matches!(
        res.unwrap_err(),
        AiError::TooLarge { limit: 8192 }
    ));
}

fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

fn openai_stream(pieces: &[&str], finish: bool) -> Vec<String> {
    let mut ev = vec![openai_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    for p in pieces {
        ev.push(openai_chunk(json!({"content": p}), None));
    }
    if finish {
        ev.push(openai_chunk(json!({}), Some("stop")));
        ev.push(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model", "choices": [], "usage": {"prompt_tokens": 77, "completion_tokens": 9, "total_tokens": 86}})
        ));
        ev.push("data: [DONE]\n\n".into());
    }
    ev
}

#[tokio::test]
async fn openai_stream_is_assembled() {
    let pieces = ["{\"scenarios\": [{\"name\": ", "\"recreate route\"}", "]}"];
    let (res, server) = run_with(
        ProviderKind::OpenAi,
        vec![Reply::sse(&openai_stream(&pieces, true))],
        |c| c.stream = true,
    )
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(res.raw, pieces.concat());
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 77,
            output_tokens: 9
        }
    );
    let body = server.only_request().body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn openai_stream_cut_short_is_truncated() {
    let pieces = ["{\"scenarios\": [{\"name\": "];
    // The connection breaks mid-stream.
    let (res, server) = run_with(
        ProviderKind::OpenAi,
        vec![Reply::sse(&openai_stream(&pieces, false)).aborted()],
        |c| c.stream = true,
    )
    .await;
    assert!(
        matches!(res.unwrap_err(), AiError::Truncated { reason, .. } if reason.contains("broke off"))
    );
    assert_eq!(server.requests().len(), 1);
    // The stream ends cleanly but without finish_reason / [DONE].
    let (res, _s) = run_with(
        ProviderKind::OpenAi,
        vec![Reply::sse(&openai_stream(&pieces, false))],
        |c| c.stream = true,
    )
    .await;
    assert!(
        matches!(res.unwrap_err(), AiError::Truncated { reason, .. } if reason.contains("[DONE]"))
    );
}

// ---------------------------------------------------------------- Ollama

fn ollama_done(content: &str, reason: &str) -> Value {
    json!({
        "model": "test-model", "created_at": "2024-12-06T00:48:09.983619Z",
        "message": {"role": "assistant", "content": content},
        "done": true, "done_reason": reason,
        "total_duration": 1_075_509_083u64, "load_duration": 567_678_166u64,
        "prompt_eval_count": 28, "prompt_eval_duration": 236_000_000u64,
        "eval_count": 16, "eval_duration": 269_000_000u64
    })
}

#[tokio::test]
async fn ollama_success_sends_native_chat_shape() {
    let (res, server) = run_with(
        ProviderKind::Ollama,
        vec![Reply::json(200, ollama_done(&answer().to_string(), "stop"))],
        |c| {
            c.temperature = Some(0.0);
            c.top_p = Some(0.5);
            c.top_k = Some(10);
        },
    )
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 28,
            output_tokens: 16
        }
    );
    let r = server.only_request();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/api/chat"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        r.body,
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "You are a Kubernetes networking expert."},
                {"role": "user", "content": "Give me 1 scenario."}
            ],
            "stream": false,
            "format": schema(),
            "options": {"num_predict": 1000, "temperature": 0.0, "top_p": 0.5, "top_k": 10}
        })
    );
}

#[tokio::test]
async fn ollama_errors_and_limits() {
    let (res, server) = run(
        ProviderKind::Ollama,
        vec![Reply::json(
            404,
            json!({"error": "model 'test-model' not found"}),
        )],
    )
    .await;
    assert!(
        matches!(res.unwrap_err(), AiError::UnknownModel { message, .. } if message.contains("ollama pull"))
    );
    assert_eq!(server.requests().len(), 1);

    let (res, _s) = run(
        ProviderKind::Ollama,
        vec![Reply::json(200, ollama_done("{\"scenarios\": [", "length"))],
    )
    .await;
    assert!(matches!(res.unwrap_err(), AiError::Truncated { .. }));

    let (res, _s) = run(
        ProviderKind::Ollama,
        vec![Reply::json(200, ollama_done("not json", "stop"))],
    )
    .await;
    assert!(matches!(res.unwrap_err(), AiError::NotJson { .. }));

    let (res, _s) = run(
        ProviderKind::Ollama,
        vec![Reply::json(200, ollama_done("  ", "stop"))],
    )
    .await;
    assert!(matches!(res.unwrap_err(), AiError::Empty));

    let (res, server) = run(
        ProviderKind::Ollama,
        vec![
            Reply::json(503, json!({"error": "server busy, please try again.  maximum pending requests exceeded"})),
            Reply::json(200, ollama_done(&answer().to_string(), "stop")),
        ],
    )
    .await;
    assert_eq!(res.unwrap().attempts, 2);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn ollama_stream_is_assembled_and_cut_short_is_truncated() {
    let pieces = ["{\"scenarios\": ", "[{\"name\": \"recreate route\"}]", "}"];
    let mut lines: Vec<Value> = pieces
        .iter()
        .map(|p| json!({"model": "test-model", "created_at": "t", "message": {"role": "assistant", "content": p}, "done": false}))
        .collect();
    lines.push(ollama_done("", "stop"));
    let (res, server) = run_with(ProviderKind::Ollama, vec![Reply::ndjson(&lines)], |c| {
        c.stream = true
    })
    .await;
    let res = res.unwrap();
    assert_eq!((res.value, res.usage.output_tokens), (answer(), 16));
    assert_eq!(server.only_request().body["stream"], true);

    lines.pop();
    let (res, _s) = run_with(ProviderKind::Ollama, vec![Reply::ndjson(&lines)], |c| {
        c.stream = true
    })
    .await;
    assert!(matches!(res.unwrap_err(), AiError::Truncated { .. }));
}

// ---------------------------------------------------------------- transport

#[tokio::test]
async fn connection_refused_is_unreachable_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut c = ProviderConfig::new(ProviderKind::OpenAi, format!("http://{addr}/v1"), "m");
    c.api_key = Some(ApiKey::new(KEY));
    c.retry_base = Duration::from_millis(1);
    c.max_retries = 2;
    let err = chat(&client(), &c, &request()).await.unwrap_err();
    assert!(
        matches!(&err, AiError::Connect { attempts: 3, url, .. } if url.contains(&addr.to_string())),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    assert_no_key(&err);
}

#[tokio::test]
async fn slow_server_times_out_and_is_retried() {
    let slow = || openai_ok().delayed(Duration::from_secs(3));
    let (res, server) = run_with(ProviderKind::OpenAi, vec![slow(), slow()], |c| {
        c.timeout = Duration::from_millis(200);
        c.max_retries = 1;
    })
    .await;
    let err = res.unwrap_err();
    assert!(
        matches!(err, AiError::Timeout { after } if after == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    // Each attempt gave up at the timeout: two requests, neither answered.
    assert_eq!(server.requests().len(), 2);
}
