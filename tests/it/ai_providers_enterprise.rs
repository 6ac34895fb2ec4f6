//! Azure OpenAI, Google Gemini and Amazon Bedrock against local fake servers
//! that speak each API's wire format and check what the real service checks
//! before answering: Azure the `api-key` header and the `api-version`; Gemini
//! the `x-goog-api-key` header and a `responseSchema` free of what it refuses;
//! Bedrock the SigV4 signature, recomputed from the request with the secret.
//! Then `heatcheck generate` end to end with each: a cut-off answer repaired,
//! the credentials in no output.

use crate::common;

use std::time::Duration;

use heatcheck::ai::provider::{
    chat, AiError, ApiKey, AwsCredentials, ChatRequest, ChatResponse, Message, ProviderConfig,
    ProviderKind, Usage,
};
use serde_json::{json, Value};

use fake::{Check, FakeServer, Recorded, Reply};

const KEY: &str = "enterprise-secret-key-123456";
const AKID: &str = "AKIDHEATCHECKTEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY";
const TOKEN: &str = "session-token-SECRET-987";
const REGION: &str = "eu-west-1";
const MODEL_ID: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

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
        "additionalProperties": false,
        "$defs": {
            "Scenario": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": ["string", "null"]}
                },
                "required": ["name"],
                "additionalProperties": false
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
    let model = match kind {
        ProviderKind::AzureOpenAi => "gpt-4o-prod",
        ProviderKind::Bedrock => MODEL_ID,
        _ => "gemini-test",
    };
    let mut c = ProviderConfig::new(kind, server.url.clone(), model);
    match kind {
        ProviderKind::Bedrock => {
            c.region = Some(REGION.into());
            c.aws = Some(AwsCredentials {
                access_key_id: AKID.into(),
                secret_access_key: ApiKey::new(SECRET),
                session_token: Some(ApiKey::new(TOKEN)),
            });
        }
        _ => c.api_key = Some(ApiKey::new(KEY)),
    }
    c.max_tokens = 1000;
    c.timeout = Duration::from_secs(5);
    c.retry_base = Duration::from_millis(5);
    c.retry_cap = Duration::from_millis(20);
    c
}

async fn run_with(
    kind: ProviderKind,
    script: Vec<Reply>,
    tweak: impl FnOnce(&mut ProviderConfig),
) -> (Result<ChatResponse, AiError>, FakeServer) {
    let server = FakeServer::start_checked(check_for(kind), script).await;
    let mut c = cfg(kind, &server);
    tweak(&mut c);
    let res = chat(&client(), &c, &request()).await;
    (res, server)
}

async fn run(
    kind: ProviderKind,
    script: Vec<Reply>,
) -> (Result<ChatResponse, AiError>, FakeServer) {
    run_with(kind, script, |_| {}).await
}

fn check_for(kind: ProviderKind) -> Check {
    match kind {
        ProviderKind::AzureOpenAi => std::sync::Arc::new(azure_check),
        ProviderKind::Gemini => std::sync::Arc::new(gemini_check),
        ProviderKind::Bedrock => std::sync::Arc::new(|r: &Recorded| bedrock_check(r, SECRET)),
        _ => unreachable!(),
    }
}

fn assert_no_secret(text: &str) {
    for s in [KEY, SECRET, TOKEN, "SECRETKEY", "secret-key"] {
        assert!(!text.contains(s), "a secret leaked ({s}): {text}");
    }
}

fn assert_no_key(e: &AiError) {
    assert_no_secret(&format!("{e} {e:?}"));
}

// ------------------------------------------------------------- Azure OpenAI

const AZURE_VERSIONS: &[&str] = &["2024-06-01", "2024-10-21", "2025-01-01-preview"];

/// Azure checks the resource key (or an Entra ID token) and the api-version.
fn azure_check(r: &Recorded) -> Option<Reply> {
    let key_ok = r.header("api-key") == Some(KEY);
    let token_ok = r.header("authorization") == Some(&format!("Bearer {KEY}"));
    if !key_ok && !token_ok {
        return Some(Reply::json(
            401,
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
        ));
    }
    match r.query_param("api-version") {
        None => Some(Reply::json(
            404,
            json!({"error": {"code": "404", "message": "Resource not found"}}),
        )),
        Some(v) if !AZURE_VERSIONS.contains(&v.as_str()) => Some(Reply::json(
            404,
            json!({"error": {"code": "404", "message": "Resource not found"}}),
        )),
        Some(_) if r.path != "/openai/deployments/gpt-4o-prod/chat/completions" => {
            Some(Reply::json(
                404,
                json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}),
            ))
        }
        Some(_) => None,
    }
}

fn azure_completion(content: &str, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-az", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
        "choices": [{"index": 0, "finish_reason": finish,
            "message": {"role": "assistant", "content": content},
            "content_filter_results": {}}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100}
    })
}

fn azure_ok() -> Reply {
    Reply::json(200, azure_completion(&answer().to_string(), "stop"))
}

#[tokio::test]
async fn azure_success_uses_the_deployment_url_api_version_and_api_key() {
    let (res, server) = run(ProviderKind::AzureOpenAi, vec![azure_ok()]).await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 80,
            output_tokens: 20
        }
    );
    let r = server.only_request();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/openai/deployments/gpt-4o-prod/chat/completions")
    );
    assert_eq!(r.query_param("api-version").as_deref(), Some("2024-10-21"));
    assert_eq!(r.header("api-key"), Some(KEY));
    assert_eq!(r.header("authorization"), None);
    assert!(
        r.body.get("model").is_none(),
        "the URL names the deployment"
    );
    assert_eq!(r.body["messages"][0]["role"], "system");
    assert_eq!(r.body["max_tokens"], 1000);
    let rf = &r.body["response_format"];
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["strict"], true);
}

#[tokio::test]
async fn azure_entra_id_token_and_configured_api_version() {
    let (res, server) = run_with(ProviderKind::AzureOpenAi, vec![azure_ok()], |c| {
        c.api_key = None;
        c.bearer_token = Some(ApiKey::new(KEY));
        c.api_version = "2025-01-01-preview".into();
    })
    .await;
    res.unwrap();
    let r = server.only_request();
    assert_eq!(r.header("api-key"), None);
    assert_eq!(
        r.query_param("api-version").as_deref(),
        Some("2025-01-01-preview")
    );
}

#[tokio::test]
async fn azure_refusals_of_the_request_are_clear() {
    let (res, server) = run_with(ProviderKind::AzureOpenAi, vec![azure_ok()], |c| {
        c.api_key = Some(ApiKey::new("wrong-key-1234"));
    })
    .await;
    let err = res.unwrap_err();
    assert!(matches!(err, AiError::Unauthorized { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1, "401 is not retried");
    assert!(!err.to_string().contains("wrong-key-1234"));
    let unauthorized = err.to_string().replace(&server.url, "http://[fake]");

    let (res, _) = run_with(ProviderKind::AzureOpenAi, vec![azure_ok()], |c| {
        c.api_version = "1999-01-01".into();
    })
    .await;
    let bad_version = res.unwrap_err();
    assert!(matches!(bad_version, AiError::Rejected { status: 404, .. }));

    let (res, server) = run_with(ProviderKind::AzureOpenAi, vec![azure_ok()], |c| {
        c.model = "gpt-4o-typo".into();
    })
    .await;
    let missing = res.unwrap_err();
    assert!(
        matches!(missing, AiError::UnknownModel { .. }),
        "{missing:?}"
    );
    let shown = [unauthorized, bad_version.to_string(), missing.to_string()]
        .join("\n")
        .replace(&server.url, "http://[fake]");
    let shown = regex_replace(&shown, r"http://127\.0\.0\.1:[0-9]+", "http://[fake]");
    insta::assert_snapshot!(shown);
}

#[tokio::test]
async fn azure_429_honours_retry_after_then_succeeds() {
    let (res, server) = run(
        ProviderKind::AzureOpenAi,
        vec![
            Reply::json(
                429,
                json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second."}}),
            )
            .header("retry-after", "1"),
            azure_ok(),
        ],
    )
    .await;
    assert_eq!(res.unwrap().attempts, 2);
    let reqs = server.requests();
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(900), "waited only {gap:?}");
}

#[tokio::test]
async fn azure_content_filter_and_truncation_are_typed() {
    let filtered = Reply::json(
        400,
        json!({"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"violence": {"filtered": true, "severity": "medium"}}}}}),
    );
    let (res, server) = run(ProviderKind::AzureOpenAi, vec![filtered]).await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, AiError::Refusal { message } if message.contains("content filter")),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
    let (res, _) = run(
        ProviderKind::AzureOpenAi,
        vec![Reply::json(200, azure_completion("", "content_filter"))],
    )
    .await;
    assert!(matches!(res.unwrap_err(), AiError::Refusal { .. }));
    let (res, _) = run(
        ProviderKind::AzureOpenAi,
        vec![Reply::json(
            200,
            azure_completion("{\"scenarios\": [{\"na", "length"),
        )],
    )
    .await;
    assert!(matches!(res.unwrap_err(), AiError::Truncated { .. }));
}

#[tokio::test]
async fn azure_stream_is_assembled() {
    let text = answer().to_string();
    let (a, b) = text.split_at(12);
    let chunk = |delta: Value, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "content_filter_results": {}}]})
        )
    };
    let events = vec![
        // Azure's first chunk carries the prompt filter results and no choices.
        format!(
            "data: {}\n\n",
            json!({"id": "", "object": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]})
        ),
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": a}), None),
        chunk(json!({"content": b}), None),
        chunk(json!({}), Some("stop")),
        format!(
            "data: {}\n\n",
            json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
        ),
        "data: [DONE]\n\n".to_string(),
    ];
    let (res, server) = run_with(ProviderKind::AzureOpenAi, vec![Reply::sse(&events)], |c| {
        c.stream = true;
    })
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(res.usage.output_tokens, 7);
    let r = server.only_request();
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"], json!({"include_usage": true}));
}

// ------------------------------------------------------------------- Gemini

/// Gemini checks the key, and parses the schema as its own Schema message:
/// an unknown field (`$ref`, `additionalProperties`, ...) is a 400.
fn gemini_check(r: &Recorded) -> Option<Reply> {
    if r.header("x-goog-api-key") != Some(KEY) {
        return Some(Reply::json(
            400,
            json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]}}),
        ));
    }
    let gen = &r.body["generationConfig"];
    let Some(schema) = gen.get("responseSchema") else {
        return Some(invalid("generation_config.response_schema is required"));
    };
    if gen["responseMimeType"] != "application/json" {
        return Some(invalid(
            "response_schema is only supported with response_mime_type application/json",
        ));
    }
    if let Some(field) = unknown_schema_field(schema) {
        return Some(invalid(&format!(
            "Invalid JSON payload received. Unknown name \"{field}\" at 'generation_config.response_schema': Cannot find field."
        )));
    }
    None
}

fn invalid(message: &str) -> Reply {
    Reply::json(
        400,
        json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}),
    )
}

/// The first key that Gemini's Schema message does not have.
fn unknown_schema_field(s: &Value) -> Option<String> {
    const KNOWN: &[&str] = &[
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    ];
    let o = s.as_object()?;
    for (k, v) in o {
        if !KNOWN.contains(&k.as_str()) {
            return Some(k.clone());
        }
        let nested = match k.as_str() {
            "properties" => v
                .as_object()
                .map(|p| p.values().collect())
                .unwrap_or_default(),
            "items" => vec![v],
            "anyOf" => v.as_array().map(|a| a.iter().collect()).unwrap_or_default(),
            _ => Vec::new(),
        };
        if let Some(f) = nested.into_iter().find_map(unknown_schema_field) {
            return Some(f);
        }
    }
    if let Some(t) = o.get("type") {
        let ok = ["STRING", "INTEGER", "NUMBER", "BOOLEAN", "ARRAY", "OBJECT"];
        if !t.as_str().is_some_and(|t| ok.contains(&t)) {
            return Some(format!("type {t}"));
        }
    }
    None
}

fn gemini_response(text: &str, finish: &str) -> Value {
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish, "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"}]}],
        "usageMetadata": {"promptTokenCount": 90, "candidatesTokenCount": 30, "totalTokenCount": 120},
        "modelVersion": "gemini-test"
    })
}

fn gemini_ok() -> Reply {
    Reply::json(200, gemini_response(&answer().to_string(), "STOP"))
}

#[tokio::test]
async fn gemini_success_sends_generate_content_with_a_response_schema() {
    let (res, server) = run_with(ProviderKind::Gemini, vec![gemini_ok()], |c| {
        c.temperature = Some(0.4);
        c.top_k = Some(20);
    })
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 90,
            output_tokens: 30
        }
    );
    let r = server.only_request();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1beta/models/gemini-test:generateContent")
    );
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        r.body["systemInstruction"],
        json!({"parts": [{"text": "You are a Kubernetes networking expert."}]})
    );
    assert_eq!(
        r.body["contents"],
        json!([{"role": "user", "parts": [{"text": "Give me 1 scenario."}]}])
    );
    let gen = &r.body["generationConfig"];
    assert_eq!(
        (
            gen["maxOutputTokens"].as_u64(),
            gen["temperature"].as_f64(),
            gen["topK"].as_u64()
        ),
        (Some(1000), Some(0.4), Some(20))
    );
    assert_eq!(
        gen["responseSchema"],
        json!({
            "type": "OBJECT",
            "properties": {"scenarios": {"type": "ARRAY", "items": {
                "type": "OBJECT",
                "properties": {"name": {"type": "STRING"}, "description": {"type": "STRING", "nullable": true}},
                "propertyOrdering": ["name", "description"],
                "required": ["name"]
            }}},
            "propertyOrdering": ["scenarios"],
            "required": ["scenarios"]
        })
    );
}

#[tokio::test]
async fn gemini_accepts_the_real_scenario_schema() {
    // The schema generation actually sends, through the server's field check.
    let (res, server) = {
        let server =
            FakeServer::start_checked(check_for(ProviderKind::Gemini), vec![gemini_ok()]).await;
        let c = cfg(ProviderKind::Gemini, &server);
        let mut req = request();
        req.schema = heatcheck::ai::prompt::response_schema_for(3);
        (chat(&client(), &c, &req).await, server)
    };
    res.unwrap();
    let sent = &server.only_request().body["generationConfig"]["responseSchema"];
    let scenarios = &sent["properties"]["scenarios"];
    assert_eq!(scenarios["maxItems"], 3);
    assert!(scenarios["items"]["properties"]["steps"]["items"]["anyOf"].is_array());
}

#[tokio::test]
async fn gemini_errors_and_finish_reasons_are_clear() {
    let (res, server) = run_with(ProviderKind::Gemini, vec![gemini_ok()], |c| {
        c.api_key = Some(ApiKey::new("AIza-wrong-key-000"));
    })
    .await;
    let bad_key = res.unwrap_err();
    assert!(
        matches!(bad_key, AiError::Unauthorized { .. }),
        "{bad_key:?}"
    );
    assert_eq!(server.requests().len(), 1);
    assert!(!bad_key.to_string().contains("AIza-wrong"));
    let (res, _) = run(
        ProviderKind::Gemini,
        vec![Reply::json(
            200,
            json!({"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]}],
                "usageMetadata": {"promptTokenCount": 90, "totalTokenCount": 90}}),
        )],
    )
    .await;
    let safety = res.unwrap_err();
    assert!(matches!(safety, AiError::Refusal { .. }), "{safety:?}");
    let (res, _) = run(
        ProviderKind::Gemini,
        vec![Reply::json(
            200,
            gemini_response("{\"scenarios\": [{\"name\": \"ha", "MAX_TOKENS"),
        )],
    )
    .await;
    let truncated = res.unwrap_err();
    assert!(matches!(truncated, AiError::Truncated { .. }));
    let (res, _) = run(
        ProviderKind::Gemini,
        vec![Reply::json(
            404,
            json!({"error": {"code": 404, "message": "models/gemini-test is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.", "status": "NOT_FOUND"}}),
        )],
    )
    .await;
    let unknown = res.unwrap_err();
    assert!(matches!(unknown, AiError::UnknownModel { .. }));
    let shown = [bad_key, safety, truncated, unknown]
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(shown);
}

#[tokio::test]
async fn gemini_429_and_503_are_retried() {
    let exhausted = Reply::json(
        429,
        json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}),
    );
    let (res, server) = run(ProviderKind::Gemini, vec![exhausted, gemini_ok()]).await;
    assert_eq!(res.unwrap().attempts, 2);
    assert_eq!(server.requests().len(), 2);
    let overloaded = || {
        Reply::json(
            503,
            json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}),
        )
    };
    let (res, server) = run(ProviderKind::Gemini, vec![overloaded(); 4]).await;
    let err = res.unwrap_err();
    assert!(
        matches!(
            err,
            AiError::Server {
                status: 503,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    assert_eq!(server.requests().len(), 4);
}

fn gemini_chunk(text: &str, finish: Option<&str>) -> String {
    let mut cand = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
    if let Some(f) = finish {
        cand["finishReason"] = json!(f);
    }
    let mut v = json!({"candidates": [cand], "modelVersion": "gemini-test"});
    if finish.is_some() {
        v["usageMetadata"] =
            json!({"promptTokenCount": 90, "candidatesTokenCount": 12, "totalTokenCount": 102});
    }
    format!("data: {v}\r\n\r\n")
}

#[tokio::test]
async fn gemini_stream_is_assembled_and_cut_short_is_truncated() {
    let text = answer().to_string();
    let (a, b) = text.split_at(15);
    let events = vec![gemini_chunk(a, None), gemini_chunk(b, Some("STOP"))];
    let (res, server) = run_with(ProviderKind::Gemini, vec![Reply::sse(&events)], |c| {
        c.stream = true;
    })
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(res.usage.output_tokens, 12);
    let r = server.only_request();
    assert_eq!(r.path, "/v1beta/models/gemini-test:streamGenerateContent");
    assert_eq!(r.query, "alt=sse");
    let (res, _) = run_with(
        ProviderKind::Gemini,
        vec![Reply::sse(&[gemini_chunk(a, None)])],
        |c| c.stream = true,
    )
    .await;
    assert!(matches!(res.unwrap_err(), AiError::Truncated { .. }));
}

// ------------------------------------------------------------------ Bedrock

/// What bedrock-runtime verifies: a SigV4 `Authorization` for service
/// `bedrock` in the region, over the headers it lists, the body and the
/// x-amz-date, recomputed here with the secret `secret`. A session token
/// must be signed. The replies are AWS's (`x-amzn-ErrorType` + `{"message"}`).
fn bedrock_check(r: &Recorded, secret: &str) -> Option<Reply> {
    let refuse = |status: u16, kind: &str, message: &str| {
        Some(Reply::json(status, json!({"message": message})).header(
            "x-amzn-errortype",
            &format!("{kind}:http://internal.amazon.com/coral/com.amazon.coral.service/"),
        ))
    };
    let Some(auth) = r.header("authorization") else {
        return refuse(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    let re = regex::Regex::new(
        r"^AWS4-HMAC-SHA256 Credential=([A-Z0-9]+)/([0-9]{8})/([a-z0-9-]+)/bedrock/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$",
    )
    .unwrap();
    let Some(m) = re.captures(auth) else {
        return refuse(
            403,
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
        );
    };
    if &m[1] != AKID {
        return refuse(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    if &m[3] != REGION {
        return refuse(
            403,
            "InvalidSignatureException",
            "Credential should be scoped to a valid region.",
        );
    }
    let Some(date) = r.header("x-amz-date") else {
        return refuse(
            403,
            "IncompleteSignatureException",
            "Date must be in ISO-8601 'basic format'.",
        );
    };
    let signed: Vec<&str> = m[4].split(';').collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return refuse(
            403,
            "InvalidSignatureException",
            "host and x-amz-date must be signed.",
        );
    }
    if r.header("x-amz-security-token") != Some(TOKEN) || !signed.contains(&"x-amz-security-token")
    {
        return refuse(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    let Ok(when) = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ") else {
        return refuse(
            403,
            "IncompleteSignatureException",
            "Date must be in ISO-8601 'basic format'.",
        );
    };
    let time =
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(when.and_utc().timestamp() as u64);
    // Recompute over the received path (as sent, still percent-encoded).
    let host = r.header("host").unwrap_or("");
    let url = format!("http://{host}{}", r.path);
    let expected = heatcheck::ai::provider::bedrock_sign(
        AKID,
        secret,
        Some(TOKEN.to_string()),
        REGION,
        &url,
        &r.raw,
        time,
    )
    .unwrap();
    let expected_auth = expected
        .iter()
        .find(|(k, _)| *k == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap();
    if expected_auth != auth {
        return refuse(403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.");
    }
    None
}

fn bedrock_output(content: Value, stop: &str) -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 150, "outputTokens": 40, "totalTokens": 190},
        "metrics": {"latencyMs": 812}
    })
}

fn bedrock_ok() -> Reply {
    Reply::json(
        200,
        bedrock_output(
            json!([{"toolUse": {"toolUseId": "tooluse_1", "name": "scenarios", "input": answer()}}]),
            "tool_use",
        ),
    )
}

#[tokio::test]
async fn bedrock_success_is_sigv4_signed_and_uses_converse_with_a_forced_tool() {
    let (res, server) = run_with(ProviderKind::Bedrock, vec![bedrock_ok()], |c| {
        c.temperature = Some(0.1);
    })
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 150,
            output_tokens: 40
        }
    );
    let r = server.only_request();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        (
            "POST",
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        )
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body,
        json!({
            "messages": [{"role": "user", "content": [{"text": "Give me 1 scenario."}]}],
            "inferenceConfig": {"maxTokens": 1000, "temperature": 0.1},
            "toolConfig": {
                "tools": [{"toolSpec": {
                    "name": "scenarios",
                    "description": "Return the answer as the `scenarios` object. Call this tool exactly once.",
                    "inputSchema": {"json": schema()},
                }}],
                "toolChoice": {"tool": {"name": "scenarios"}},
            },
            "system": [{"text": "You are a Kubernetes networking expert."}],
        })
    );
}

#[tokio::test]
async fn bedrock_wrong_secret_fails_the_signature_check() {
    let (res, server) = run_with(ProviderKind::Bedrock, vec![bedrock_ok()], |c| {
        c.aws.as_mut().unwrap().secret_access_key = ApiKey::new("not-the-SECRETKEY-at-all");
    })
    .await;
    let err = res.unwrap_err();
    assert!(
        matches!(err, AiError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "a refused signature is not retried"
    );
    assert_no_key(&err);
    let (res, _) = run_with(ProviderKind::Bedrock, vec![bedrock_ok()], |c| {
        c.aws.as_mut().unwrap().session_token = None;
    })
    .await;
    let no_token = res.unwrap_err();
    assert!(matches!(no_token, AiError::Unauthorized { .. }));
    insta::assert_snapshot!(format!("{err}\n{no_token}"));
}

#[tokio::test]
async fn bedrock_throttling_is_retried_and_signed_again() {
    let throttled = Reply::json(
        429,
        json!({"message": "Too many requests, please wait before trying again."}),
    )
    .header(
        "x-amzn-errortype",
        "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
    );
    let (res, server) = run(ProviderKind::Bedrock, vec![throttled, bedrock_ok()]).await;
    assert_eq!(res.unwrap().attempts, 2);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    // Both attempts passed the signature check: the second was signed too.
    assert!(reqs[1].header("authorization").is_some());
}

#[tokio::test]
async fn bedrock_answer_failures_and_errors_are_clear() {
    let (res, _) = run(
        ProviderKind::Bedrock,
        vec![Reply::json(
            200,
            bedrock_output(
                json!([{"toolUse": {"toolUseId": "t", "name": "scenarios", "input": {}}}]),
                "max_tokens",
            ),
        )],
    )
    .await;
    let truncated = res.unwrap_err();
    assert!(matches!(truncated, AiError::Truncated { .. }));
    let (res, _) = run(
        ProviderKind::Bedrock,
        vec![Reply::json(
            400,
            json!({"message": "The provided model identifier is invalid."}),
        )
        .header(
            "x-amzn-errortype",
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        )],
    )
    .await;
    let unknown = res.unwrap_err();
    assert!(
        matches!(unknown, AiError::UnknownModel { .. }),
        "{unknown:?}"
    );
    let (res, _) = run(
        ProviderKind::Bedrock,
        vec![Reply::json(
            200,
            bedrock_output(
                json!([{"text": "Sorry, the model cannot answer this."}]),
                "guardrail_intervened",
            ),
        )],
    )
    .await;
    let guardrail = res.unwrap_err();
    assert!(matches!(guardrail, AiError::Refusal { .. }));
    let (res, server) = run(
        ProviderKind::Bedrock,
        vec![
            Reply::json(
                503,
                json!({"message": "Bedrock is unable to process your request."})
            )
            .header(
                "x-amzn-errortype",
                "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            );
            4
        ],
    )
    .await;
    let unavailable = res.unwrap_err();
    assert!(unavailable.is_unreachable());
    assert_eq!(server.requests().len(), 4);
    insta::assert_snapshot!([truncated, unknown, guardrail, unavailable]
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n"));
}

#[tokio::test]
async fn bedrock_api_key_is_sent_as_a_bearer_token() {
    let check: Check = std::sync::Arc::new(|r: &Recorded| {
        (r.header("authorization") != Some(&format!("Bearer {KEY}"))).then(|| {
            Reply::json(403, json!({"message": "Authentication failed"}))
                .header("x-amzn-errortype", "AccessDeniedException:")
        })
    });
    let server = FakeServer::start_checked(check, vec![bedrock_ok()]).await;
    let mut c = cfg(ProviderKind::Bedrock, &server);
    c.aws = None;
    c.api_key = Some(ApiKey::new(KEY));
    chat(&client(), &c, &request()).await.unwrap();
    let r = server.only_request();
    assert_eq!(r.header("x-amz-date"), None, "no SigV4 with an API key");
}

/// One AWS event-stream message, as bedrock-runtime frames it.
fn frame(message_type: &str, kind: &str, payload: Value) -> Vec<u8> {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let type_header = if message_type == "event" {
        ":event-type"
    } else {
        ":exception-type"
    };
    let msg = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String(message_type.to_string().into()),
        ))
        .add_header(Header::new(
            type_header,
            HeaderValue::String(kind.to_string().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&msg, &mut out).unwrap();
    out
}

fn bedrock_stream(pieces: &[&str], stop: Option<&str>) -> Vec<Vec<u8>> {
    let mut frames = vec![
        frame("event", "messageStart", json!({"role": "assistant"})),
        frame(
            "event",
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "scenarios"}}}),
        ),
    ];
    for p in pieces {
        frames.push(frame(
            "event",
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": p}}}),
        ));
    }
    if let Some(stop) = stop {
        frames.push(frame(
            "event",
            "contentBlockStop",
            json!({"contentBlockIndex": 0}),
        ));
        frames.push(frame("event", "messageStop", json!({"stopReason": stop})));
        frames.push(frame("event", "metadata", json!({"usage": {"inputTokens": 150, "outputTokens": 33, "totalTokens": 183}, "metrics": {"latencyMs": 900}})));
    }
    frames
}

#[tokio::test]
async fn bedrock_converse_stream_is_decoded() {
    let text = answer().to_string();
    let (a, b) = text.split_at(10);
    let (res, server) = run_with(
        ProviderKind::Bedrock,
        vec![Reply::frames(bedrock_stream(&[a, b], Some("tool_use")))],
        |c| c.stream = true,
    )
    .await;
    let res = res.unwrap();
    assert_eq!(res.value, answer());
    assert_eq!(res.usage.output_tokens, 33);
    assert_eq!(
        server.only_request().path,
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
    );
    // Cut short (no messageStop), then a mid-stream exception.
    let (res, _) = run_with(
        ProviderKind::Bedrock,
        vec![Reply::frames(bedrock_stream(&[a], None))],
        |c| c.stream = true,
    )
    .await;
    assert!(matches!(res.unwrap_err(), AiError::Truncated { .. }));
    let mut throttled = bedrock_stream(&[a], None);
    throttled.push(frame(
        "exception",
        "throttlingException",
        json!({"message": "Too many tokens, please wait before trying again."}),
    ));
    let (res, server) = run_with(
        ProviderKind::Bedrock,
        vec![
            Reply::frames(throttled),
            Reply::frames(bedrock_stream(&[&text], Some("max_tokens"))),
        ],
        |c| c.stream = true,
    )
    .await;
    assert!(
        matches!(res.unwrap_err(), AiError::Truncated { .. }),
        "max_tokens after a retried throttling"
    );
    assert_eq!(server.requests().len(), 2);
}

// ------------------------------------------- `heatcheck generate` end to end

fn regex_replace(text: &str, pattern: &str, with: &str) -> String {
    regex::Regex::new(pattern)
        .unwrap()
        .replace_all(text, with)
        .into_owned()
}

const API: &str = r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {app: api}}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: echo, image: echo}]}
"#;

fn good(name: &str) -> Value {
    json!({
        "name": name,
        "description": "one replica of web keeps the route served",
        "steps": [
            {"scale": {"kind": "Deployment", "name": "web", "replicas": 1}},
            {"wait": {"kind": "Deployment", "name": "web", "available": true}}
        ],
        "assertions": [
            {"name": "one ready replica", "resource": {"kind": "Deployment", "name": "web", "expect": {"$.status.readyReplicas": 1}}},
            {"name": "served", "http": {"url": "{{gateway \"gw\"}}/", "headers": {"Host": "shop.example.com"}, "eventually": {"within": "10s", "every": "200ms"}, "expect": {"status": 200}}}
        ]
    })
}

/// Generates with `provider` against a fake server that first cuts the
/// answer off, then answers well: the cut is repaired, the scenario locked,
/// and no credential appears in stdout, stderr or the lockfile.
fn generate_end_to_end(
    provider: &str,
    extra: &str,
    env: &[(&str, &str)],
    kind: ProviderKind,
    cut: Reply,
    ok: Reply,
) -> Vec<Recorded> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(FakeServer::start_checked(check_for(kind), vec![cut, ok]));
    let ai = format!(
        r#"  ai:
    provider: {provider}
    model: {model}
    baseUrl: {url}
    count: 1
    maxRepairs: 1
{extra}    system: You are a Kubernetes networking expert.
    context: [{{kind: HTTPRoute}}, {{kind: Service}}, {{kind: Deployment}}]
    prompt: |
      My objects: {{{{yaml context}}}}
      Give me {{{{count}}}} scenarios.
"#,
        model = match kind {
            ProviderKind::AzureOpenAi => "gpt-4o-prod",
            ProviderKind::Bedrock => MODEL_ID,
            _ => "gemini-test",
        },
        url = server.url,
    );
    let mut c = common::Case::suite(&common::suite_with(&format!("gen-{provider}"), &ai))
        .file("base.yaml", &format!("{}{API}", common::BASE));
    for (k, v) in env {
        c = c.env(k, v);
    }
    let out = c.exec(&common::args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    let lock = std::fs::read_to_string(c.path("suite.lock.yaml")).expect("lock written");
    assert!(lock.contains("ai: fine"), "{lock}");
    assert!(lock.contains(&format!("provider: {provider}")), "{lock}");
    for text in [&out.stdout, &out.stderr, &lock] {
        assert_no_secret(text);
    }
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "one cut-off answer, one repair");
    drop(server);
    rt.shutdown_timeout(Duration::from_secs(5));
    reqs
}

fn last_user_text_contains(body: &Value, pointer: &str, needle: &str) {
    let msgs = body.pointer(pointer).and_then(Value::as_array).unwrap();
    let text = msgs.last().unwrap().to_string();
    assert!(text.contains(needle), "{text}");
}

#[test]
fn generate_with_azure_openai_repairs_a_cut_off_answer() {
    let fine = json!({"scenarios": [good("fine")]}).to_string();
    let reqs = generate_end_to_end(
        "azure-openai",
        "    apiVersion: 2024-06-01\n",
        &[("AZURE_OPENAI_API_KEY", KEY)],
        ProviderKind::AzureOpenAi,
        Reply::json(
            200,
            azure_completion("{\"scenarios\": [{\"name\": \"ha", "length"),
        ),
        Reply::json(200, azure_completion(&fine, "stop")),
    );
    assert_eq!(
        reqs[0].query_param("api-version").as_deref(),
        Some("2024-06-01")
    );
    last_user_text_contains(&reqs[1].body, "/messages", "cut off (finish_reason length)");
}

#[test]
fn generate_with_gemini_repairs_a_cut_off_answer() {
    let fine = json!({"scenarios": [good("fine")]}).to_string();
    let reqs = generate_end_to_end(
        "gemini",
        "",
        &[("GEMINI_API_KEY", ""), ("GOOGLE_API_KEY", KEY)],
        ProviderKind::Gemini,
        Reply::json(
            200,
            gemini_response("{\"scenarios\": [{\"name\": \"ha", "MAX_TOKENS"),
        ),
        Reply::json(200, gemini_response(&fine, "STOP")),
    );
    last_user_text_contains(
        &reqs[1].body,
        "/contents",
        "cut off (finishReason MAX_TOKENS)",
    );
}

#[test]
fn generate_with_bedrock_repairs_a_cut_off_answer() {
    let reqs = generate_end_to_end(
        "bedrock",
        "",
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", TOKEN),
            ("AWS_REGION", REGION),
            ("AWS_BEARER_TOKEN_BEDROCK", ""),
        ],
        ProviderKind::Bedrock,
        Reply::json(
            200,
            bedrock_output(
                json!([{"toolUse": {"toolUseId": "t", "name": "scenarios", "input": {}}}]),
                "max_tokens",
            ),
        ),
        Reply::json(
            200,
            bedrock_output(
                json!([{"toolUse": {"toolUseId": "t2", "name": "scenarios", "input": {"scenarios": [good("fine")]}}}]),
                "tool_use",
            ),
        ),
    );
    last_user_text_contains(
        &reqs[1].body,
        "/messages",
        "cut off (stopReason max_tokens)",
    );
}

#[test]
fn missing_provider_settings_name_what_to_set() {
    let ai =
        |provider: &str| format!("  ai:\n    provider: {provider}\n    model: m\n    prompt: p\n");
    let mut shown = Vec::new();
    for (provider, env) in [
        (
            "azure-openai",
            vec![("AZURE_OPENAI_ENDPOINT", ""), ("AZURE_OPENAI_API_KEY", "")],
        ),
        (
            "azure-openai",
            vec![
                ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com"),
                ("AZURE_OPENAI_API_KEY", ""),
                ("AZURE_OPENAI_AD_TOKEN", ""),
            ],
        ),
        (
            "gemini",
            vec![("GEMINI_API_KEY", ""), ("GOOGLE_API_KEY", "")],
        ),
        (
            "bedrock",
            vec![("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "")],
        ),
        (
            "bedrock",
            vec![
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", ""),
                ("AWS_SECRET_ACCESS_KEY", ""),
                ("AWS_BEARER_TOKEN_BEDROCK", ""),
            ],
        ),
    ] {
        let mut c = common::Case::suite(&common::suite_with("gen-missing", &ai(provider)))
            .file("base.yaml", common::BASE);
        for (k, v) in env {
            c = c.env(k, v);
        }
        let out = c.exec(&common::args(&["generate", "suite.yaml", "--sandbox"]));
        out.assert_code(2);
        shown.push(out.stderr.trim().to_string());
    }
    insta::assert_snapshot!(shown.join("\n"));
}
