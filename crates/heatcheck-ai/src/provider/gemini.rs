//! Google Gemini API: `POST {base}/v1beta/models/{model}:generateContent`
//! (`:streamGenerateContent?alt=sse` when streaming) with an `x-goog-api-key`
//! header. The answer is constrained by `generationConfig.responseSchema`,
//! Gemini's subset of the OpenAPI 3.0 schema object: [`response_schema`]
//! translates our JSON Schema into it (references inlined, `oneOf` as
//! `anyOf`, `null` types as `nullable`, what it does not accept dropped). The
//! caller validates the answer against the full schema either way.

use serde_json::{json, Map, Value};

use super::config::ProviderConfig;
use super::decode::{parse_object, Answer};
use super::error::redact_all;
use super::error::AiError;
use super::transport::{post, with_retries, BodyReader, ErrorReply, Failure, Sse};
use super::wire::{ChatRequest, ChatResponse, Role, Usage};

pub(super) async fn chat(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
) -> Result<ChatResponse, AiError> {
    let model = cfg.model.trim_start_matches("models/");
    let url = if cfg.stream {
        format!(
            "{}/v1beta/models/{model}:streamGenerateContent?alt=sse",
            cfg.base_url
        )
    } else {
        format!("{}/v1beta/models/{model}:generateContent", cfg.base_url)
    };
    let body = request_body(cfg, req);
    let mut headers = Vec::new();
    if let Some(key) = &cfg.api_key {
        headers.push(("x-goog-api-key", key.expose().to_string()));
    }
    let (url, headers, body) = (&url, &headers, &body);
    let (answer, attempts) = with_retries(cfg, |_| async move {
        let mut reader = post(client, cfg, url, headers, body, |r| classify(cfg, r)).await?;
        if cfg.stream {
            read_stream(cfg, &mut reader).await
        } else {
            let bytes = reader.read_all_for_answer().await?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| AiError::Malformed {
                message: format!("the generateContent response is not JSON: {e}"),
            })?;
            let mut acc = Accumulated::default();
            acc.add(&v);
            Ok(acc.decide()?)
        }
    })
    .await?;
    Ok(ChatResponse {
        value: answer.value,
        raw: answer.raw,
        usage: answer.usage,
        attempts,
    })
}

pub(crate) fn request_body(cfg: &ProviderConfig, req: &ChatRequest) -> Value {
    let contents: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({"role": role, "parts": [{"text": m.content}]})
        })
        .collect();
    let mut gen = json!({
        "responseMimeType": "application/json",
        "responseSchema": response_schema(&req.schema),
        "maxOutputTokens": cfg.max_tokens,
    });
    let g = gen.as_object_mut().expect("object literal");
    if let Some(t) = cfg.temperature {
        g.insert("temperature".into(), json!(t));
    }
    if let Some(p) = cfg.top_p {
        g.insert("topP".into(), json!(p));
    }
    if let Some(k) = cfg.top_k {
        g.insert("topK".into(), json!(k));
    }
    let mut body = json!({"contents": contents, "generationConfig": gen});
    if let Some(system) = &req.system {
        body.as_object_mut().expect("object literal").insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system}]}),
        );
    }
    body
}

/// References deeper than this are cut off (a recursive schema cannot be inlined).
const MAX_DEPTH: usize = 32;

/// Our JSON Schema as a Gemini `responseSchema`.
pub(crate) fn response_schema(schema: &Value) -> Value {
    convert(schema, schema, 0).unwrap_or_else(|| json!({"type": "OBJECT"}))
}

fn resolve<'a>(s: &'a Value, root: &'a Value) -> &'a Value {
    let mut cur = s;
    for _ in 0..16 {
        match cur.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with('#') => match root.pointer(&r[1..]) {
                Some(t) => cur = t,
                None => return cur,
            },
            _ => return cur,
        }
    }
    cur
}

/// The keywords of `s` with `$ref` and `allOf` merged in (the schema's own
/// keywords win).
fn flatten(s: &Value, root: &Value, depth: usize) -> Option<Map<String, Value>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let Value::Object(o) = s else { return None };
    let mut out = Map::new();
    for (k, v) in o {
        if k != "$ref" && k != "allOf" {
            out.insert(k.clone(), v.clone());
        }
    }
    let mut parts: Vec<&Value> = Vec::new();
    if o.contains_key("$ref") {
        let target = resolve(s, root);
        if !std::ptr::eq(target, s) {
            parts.push(target);
        }
    }
    if let Some(Value::Array(all)) = o.get("allOf") {
        parts.extend(all.iter());
    }
    for p in parts {
        let inner = flatten(p, root, depth + 1)?;
        for (k, v) in inner {
            match (out.get_mut(&k), v) {
                (Some(Value::Object(mine)), Value::Object(theirs)) if k == "properties" => {
                    for (pk, pv) in theirs {
                        mine.entry(pk).or_insert(pv);
                    }
                }
                (Some(Value::Array(mine)), Value::Array(theirs)) if k == "required" => {
                    for r in theirs {
                        if !mine.contains(&r) {
                            mine.push(r);
                        }
                    }
                }
                (Some(_), _) => {}
                (None, v) => {
                    out.insert(k, v);
                }
            }
        }
    }
    Some(out)
}

fn gemini_type(t: &str) -> Option<&'static str> {
    Some(match t {
        "string" => "STRING",
        "integer" => "INTEGER",
        "number" => "NUMBER",
        "boolean" => "BOOLEAN",
        "array" => "ARRAY",
        "object" => "OBJECT",
        _ => return None,
    })
}

/// One schema; `None` when nothing Gemini accepts is left (a free-form
/// value), so the caller drops the property.
fn convert(s: &Value, root: &Value, depth: usize) -> Option<Value> {
    let o = flatten(s, root, depth)?;
    let mut out = Map::new();
    for k in ["description", "title"] {
        if let Some(v @ Value::String(_)) = o.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    let mut nullable = false;
    // anyOf / oneOf: null branches become `nullable`, a single branch is inlined.
    let branches = o
        .get("anyOf")
        .or_else(|| o.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(branches) = branches {
        let mut kept = Vec::new();
        for b in branches {
            let b = resolve(b, root);
            if b.get("type").and_then(Value::as_str) == Some("null") {
                nullable = true;
                continue;
            }
            if let Some(c) = convert(b, root, depth + 1) {
                kept.push(c);
            }
        }
        match kept.len() {
            0 => return None,
            1 => {
                let Value::Object(only) = kept.remove(0) else {
                    unreachable!("convert returns objects")
                };
                for (k, v) in only {
                    out.entry(k).or_insert(v);
                }
            }
            _ => {
                out.insert("anyOf".into(), Value::Array(kept));
            }
        }
        if nullable {
            out.insert("nullable".into(), json!(true));
        }
        return Some(Value::Object(out));
    }
    let types: Vec<&str> = match o.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ if o.contains_key("properties") => vec!["object"],
        _ => Vec::new(),
    };
    nullable |= types.contains(&"null");
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    let typed = match types.as_slice() {
        [] => {
            // An enum or const without a type: strings are what Gemini enumerates.
            let e = string_enum(&o)?;
            let mut m = Map::new();
            m.insert("type".into(), json!("STRING"));
            m.insert("format".into(), json!("enum"));
            m.insert("enum".into(), e);
            m
        }
        [t] => one_type(t, &o, root, depth)?,
        many => {
            let alts: Vec<Value> = many
                .iter()
                .filter_map(|t| one_type(t, &o, root, depth).map(Value::Object))
                .collect();
            if alts.is_empty() {
                return None;
            }
            let mut m = Map::new();
            m.insert("anyOf".into(), Value::Array(alts));
            m
        }
    };
    for (k, v) in typed {
        out.entry(k).or_insert(v);
    }
    if nullable {
        out.insert("nullable".into(), json!(true));
    }
    Some(Value::Object(out))
}

fn string_enum(o: &Map<String, Value>) -> Option<Value> {
    let values: Vec<Value> = match (o.get("enum"), o.get("const")) {
        (Some(Value::Array(e)), _) => e.clone(),
        (None, Some(c)) => vec![c.clone()],
        _ => return None,
    };
    let strings: Vec<Value> = values.into_iter().filter(Value::is_string).collect();
    (!strings.is_empty()).then_some(Value::Array(strings))
}

fn one_type(
    t: &str,
    o: &Map<String, Value>,
    root: &Value,
    depth: usize,
) -> Option<Map<String, Value>> {
    let gt = gemini_type(t)?;
    let mut m = Map::new();
    m.insert("type".into(), json!(gt));
    let copy = |m: &mut Map<String, Value>, keys: &[&str]| {
        for k in keys {
            if let Some(v @ Value::Number(_)) = o.get(*k) {
                m.insert((*k).into(), v.clone());
            }
        }
    };
    match gt {
        "STRING" => {
            if let Some(e) = string_enum(o) {
                m.insert("format".into(), json!("enum"));
                m.insert("enum".into(), e);
            } else if o.get("format").and_then(Value::as_str) == Some("date-time") {
                m.insert("format".into(), json!("date-time"));
            }
            copy(&mut m, &["minLength", "maxLength"]);
            if let Some(p @ Value::String(_)) = o.get("pattern") {
                m.insert("pattern".into(), p.clone());
            }
        }
        "INTEGER" | "NUMBER" => {
            copy(&mut m, &["minimum", "maximum"]);
            let ok: &[&str] = if gt == "INTEGER" {
                &["int32", "int64"]
            } else {
                &["float", "double"]
            };
            if let Some(f) = o.get("format").and_then(Value::as_str) {
                if ok.contains(&f) {
                    m.insert("format".into(), json!(f));
                }
            }
        }
        "ARRAY" => {
            // ARRAY needs `items`; an array of anything is left out.
            let items = o.get("items").filter(|i| i.is_object())?;
            m.insert("items".into(), convert(items, root, depth + 1)?);
            copy(&mut m, &["minItems", "maxItems"]);
        }
        "OBJECT" => {
            // A map (additionalProperties) keeps only its type: Gemini has no
            // way to say "any key", and an OBJECT without properties is free.
            if let Some(Value::Object(props)) = o.get("properties") {
                let mut kept = Map::new();
                for (name, sub) in props {
                    if let Some(c) = convert(sub, root, depth + 1) {
                        kept.insert(name.clone(), c);
                    }
                }
                let required: Vec<Value> = o
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter(|n| n.as_str().is_some_and(|n| kept.contains_key(n)))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                if !kept.is_empty() {
                    // Gemini orders properties alphabetically unless told.
                    let order: Vec<Value> = kept.keys().map(|k| json!(k)).collect();
                    m.insert("properties".into(), Value::Object(kept));
                    m.insert("propertyOrdering".into(), Value::Array(order));
                }
                if !required.is_empty() {
                    m.insert("required".into(), Value::Array(required));
                }
            }
        }
        _ => {}
    }
    Some(m)
}

/// `{"error":{"code","message","status","details"}}` -> (error, retry?).
pub(crate) fn classify(cfg: &ProviderConfig, reply: &ErrorReply<'_>) -> (AiError, bool) {
    let parsed: Option<Value> = serde_json::from_str(reply.body).ok();
    classify_value(cfg, reply.status, parsed.as_ref(), reply.body)
}

fn classify_value(
    cfg: &ProviderConfig,
    status: u16,
    parsed: Option<&Value>,
    body: &str,
) -> (AiError, bool) {
    // The API answers a list of one error object in some streaming paths.
    let parsed = match parsed {
        Some(Value::Array(a)) => a.first(),
        p => p,
    };
    let err = parsed
        .and_then(|v| v.get("error"))
        .filter(|e| e.is_object());
    let kind = err
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let raw_msg = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    let reasons: Vec<&str> = err
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(|x| x["reason"].as_str()).collect())
        .unwrap_or_default();
    let message = redact_all(&raw_msg, &cfg.secrets());
    let lower = message.to_lowercase();
    if matches!(status, 401 | 403)
        || matches!(kind, "UNAUTHENTICATED" | "PERMISSION_DENIED")
        || reasons.iter().any(|r| r.starts_with("API_KEY"))
    {
        let var = cfg.key_var.as_deref().unwrap_or("GEMINI_API_KEY");
        return (
            AiError::Unauthorized {
                provider: "gemini".into(),
                status,
                message: format!("{message}; check {var}"),
            },
            false,
        );
    }
    if status == 404 || kind == "NOT_FOUND" {
        if parsed.is_some() {
            return (
                AiError::UnknownModel {
                    model: cfg.model.clone(),
                    message,
                },
                false,
            );
        }
        return (
            AiError::Rejected {
                status,
                message: format!("{message} (check GEMINI_BASE_URL / ai.baseUrl)"),
            },
            false,
        );
    }
    if lower.contains("token count") || lower.contains("exceeds the maximum number of tokens") {
        return (AiError::ContextLength { message }, false);
    }
    if status == 429 || kind == "RESOURCE_EXHAUSTED" {
        return AiError::throttled(message, true);
    }
    if status >= 500 || matches!(kind, "UNAVAILABLE" | "INTERNAL") {
        let status = if status >= 500 { status } else { 503 };
        return AiError::server_side(status, message);
    }
    (AiError::Rejected { status, message }, false)
}

/// A response assembled from one body or many stream chunks.
#[derive(Default)]
struct Accumulated {
    text: String,
    finish: Option<String>,
    blocked: Vec<String>,
    prompt_block: Option<String>,
    usage: Usage,
}

impl Accumulated {
    fn add(&mut self, v: &Value) {
        if let Some(r) = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            self.prompt_block = Some(r.to_string());
        }
        let cand = &v["candidates"][0];
        if let Some(parts) = cand.pointer("/content/parts").and_then(Value::as_array) {
            for p in parts {
                // Thinking models may return their thoughts as parts too.
                if p["thought"] == json!(true) {
                    continue;
                }
                if let Some(t) = p["text"].as_str() {
                    self.text.push_str(t);
                }
            }
        }
        if let Some(f) = cand["finishReason"].as_str() {
            self.finish = Some(f.to_string());
        }
        if let Some(ratings) = cand["safetyRatings"].as_array() {
            for r in ratings.iter().filter(|r| r["blocked"] == json!(true)) {
                if let Some(c) = r["category"].as_str() {
                    self.blocked.push(c.to_string());
                }
            }
        }
        if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Usage {
                input_tokens: n("promptTokenCount"),
                // Thinking tokens are billed as output.
                output_tokens: n("candidatesTokenCount") + n("thoughtsTokenCount"),
            };
        }
    }

    fn decide(self) -> Result<Answer, AiError> {
        if let Some(r) = self.prompt_block {
            return Err(AiError::Refusal {
                message: format!("Gemini blocked the prompt (promptFeedback.blockReason {r})"),
            });
        }
        match self.finish.as_deref() {
            Some("MAX_TOKENS") => {
                return Err(AiError::Truncated {
                    reason: "finishReason MAX_TOKENS".into(),
                    usage: self.usage,
                })
            }
            Some(
                f @ ("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
                | "LANGUAGE" | "IMAGE_SAFETY"),
            ) => {
                let categories = if self.blocked.is_empty() {
                    String::new()
                } else {
                    format!("; blocked categories: {}", self.blocked.join(", "))
                };
                return Err(AiError::Refusal {
                    message: format!(
                        "Gemini's safety filters stopped the answer (finishReason {f}{categories})"
                    ),
                });
            }
            _ => {}
        }
        let value = parse_object(&self.text).map_err(|e| e.with_usage(self.usage))?;
        Ok(Answer {
            value,
            raw: self.text,
            usage: self.usage,
        })
    }
}

/// `data: {GenerateContentResponse}` events, each with a piece of the text;
/// the last one carries `finishReason` and the usage. There is no end marker:
/// a stream that closes without a `finishReason` was cut off.
async fn read_stream(cfg: &ProviderConfig, reader: &mut BodyReader) -> Result<Answer, Failure> {
    let mut sse = Sse::default();
    let mut acc = Accumulated::default();
    while let Some(chunk) = reader.stream_chunk().await? {
        for ev in sse.push(&chunk) {
            if let Some(n) = &cfg.streamed {
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let data: Value = serde_json::from_str(&ev.data).map_err(|e| AiError::Malformed {
                message: format!("a stream chunk is not JSON: {e}"),
            })?;
            if data.get("error").is_some() {
                let status = data["error"]["code"].as_u64().map_or(500, |c| c as u16);
                let (error, retry) = classify_value(cfg, status, Some(&data), &ev.data);
                return Err(if retry {
                    Failure::Retry { error, after: None }
                } else {
                    Failure::Fatal(error)
                });
            }
            acc.add(&data);
        }
    }
    if acc.finish.is_none() && acc.prompt_block.is_none() {
        return Err(Failure::Fatal(AiError::Truncated {
            reason: "the stream ended before a finishReason".into(),
            usage: acc.usage,
        }));
    }
    Ok(acc.decide()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ApiKey, Message, ProviderKind};

    #[test]
    fn schema_translation() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "scenarios": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"$ref": "#/$defs/S"}}
            },
            "required": ["scenarios"],
            "additionalProperties": false,
            "$defs": {
                "S": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "timeout": {"type": ["string", "null"], "pattern": "^[0-9]+s$", "default": "30s"},
                        "replicas": {"type": "integer", "format": "uint32", "minimum": 0},
                        "kind": {"const": "Deployment"},
                        "step": {"oneOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]},
                        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                        "anything": true,
                        "value": {"type": ["string", "number", "null", "array"]}
                    },
                    "required": ["name", "anything"]
                },
                "A": {"allOf": [{"$ref": "#/$defs/Base"}], "properties": {"b": {"type": "boolean"}}},
                "Base": {"type": "object", "properties": {"a": {"type": "string", "enum": ["x", "y"]}}, "required": ["a"]}
            }
        });
        let g = response_schema(&s);
        let sc = &g["properties"]["scenarios"];
        assert_eq!(g["type"], "OBJECT");
        assert!(g.get("$schema").is_none() && g.get("additionalProperties").is_none());
        assert_eq!(
            (
                sc["type"].as_str(),
                sc["minItems"].as_u64(),
                sc["maxItems"].as_u64()
            ),
            (Some("ARRAY"), Some(2), Some(2))
        );
        let item = &sc["items"];
        assert_eq!(item["type"], "OBJECT");
        assert_eq!(
            item["required"],
            json!(["name"]),
            "a dropped property is not required"
        );
        let p = &item["properties"];
        assert_eq!(p["name"], json!({"type": "STRING", "minLength": 1}));
        assert_eq!(
            p["timeout"],
            json!({"type": "STRING", "pattern": "^[0-9]+s$", "nullable": true})
        );
        assert_eq!(p["replicas"], json!({"type": "INTEGER", "minimum": 0}));
        assert_eq!(
            p["kind"],
            json!({"type": "STRING", "format": "enum", "enum": ["Deployment"]})
        );
        assert_eq!(p["step"]["nullable"], true);
        assert_eq!(p["step"]["type"], "OBJECT");
        assert_eq!(
            p["step"]["properties"]["a"],
            json!({"type": "STRING", "format": "enum", "enum": ["x", "y"]})
        );
        assert_eq!(p["step"]["required"], json!(["a"]));
        assert_eq!(
            p["either"]["anyOf"],
            json!([{"type": "STRING"}, {"type": "INTEGER"}])
        );
        assert_eq!(p["headers"], json!({"type": "OBJECT"}));
        assert!(p.get("anything").is_none());
        assert_eq!(
            p["value"],
            json!({"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}], "nullable": true})
        );
        // Nothing Gemini refuses is left anywhere.
        let text = g.to_string();
        for k in [
            "$ref",
            "$defs",
            "oneOf",
            "allOf",
            "additionalProperties",
            "const",
            "default",
            "\"null\"",
        ] {
            assert!(!text.contains(k), "{k} left in {text}");
        }
    }

    #[test]
    fn recursive_schema_is_cut_off() {
        let s = json!({"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}, "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}, "v": {"type": "string"}}}}});
        let g = response_schema(&s);
        assert_eq!(g["properties"]["n"]["properties"]["v"]["type"], "STRING");
    }

    #[test]
    fn body_shape() {
        let mut c = ProviderConfig::new(ProviderKind::Gemini, "http://x", "gemini-test");
        c.api_key = Some(ApiKey::new("AIza-secret"));
        c.top_k = Some(3);
        let req = ChatRequest {
            system: Some("sys".into()),
            messages: vec![
                Message::user("hi"),
                Message::assistant("{}"),
                Message::user("again"),
            ],
            schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            schema_name: "scenarios".into(),
        };
        let b = request_body(&c, &req);
        assert_eq!(b["systemInstruction"], json!({"parts": [{"text": "sys"}]}));
        assert_eq!(
            b["contents"][1],
            json!({"role": "model", "parts": [{"text": "{}"}]})
        );
        assert_eq!(
            b["generationConfig"]["responseMimeType"],
            "application/json"
        );
        assert_eq!(b["generationConfig"]["topK"], 3);
        assert_eq!(b["generationConfig"]["maxOutputTokens"], 4096);
    }

    #[test]
    fn decide_paths() {
        let d = |v: Value| {
            let mut a = Accumulated::default();
            a.add(&v);
            a.decide()
        };
        let ok = d(json!({"candidates": [{"content": {"parts": [{"text": "{\"a\":"}, {"text": "1}"}], "role": "model"}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3, "thoughtsTokenCount": 2}})).unwrap();
        assert_eq!(
            (ok.value, ok.usage.input_tokens, ok.usage.output_tokens),
            (json!({"a": 1}), 7, 5)
        );
        assert!(matches!(
            d(
                json!({"candidates": [{"content": {"parts": [{"text": "{\"a\""}]}, "finishReason": "MAX_TOKENS"}]})
            ),
            Err(AiError::Truncated { .. })
        ));
        let e = d(json!({"candidates": [{"finishReason": "SAFETY", "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]}]})).err().unwrap();
        assert!(
            matches!(&e, AiError::Refusal { message } if message.contains("HARM_CATEGORY_DANGEROUS_CONTENT")),
            "{e}"
        );
        assert!(matches!(
            d(json!({"promptFeedback": {"blockReason": "SAFETY"}})),
            Err(AiError::Refusal { .. })
        ));
        assert!(matches!(
            d(
                json!({"candidates": [{"content": {"parts": [{"text": "sure"}]}, "finishReason": "STOP"}]})
            ),
            Err(AiError::NotJson { .. })
        ));
    }

    #[test]
    fn classify_errors() {
        let mut c = ProviderConfig::new(ProviderKind::Gemini, "http://x", "gemini-test");
        c.api_key = Some(ApiKey::new("AIza-secret-123"));
        let e = |status, v: Value| {
            classify(
                &c,
                &ErrorReply {
                    status,
                    body: &v.to_string(),
                },
            )
        };
        let (err, retry) = e(
            400,
            json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}),
        );
        assert!(
            !retry
                && matches!(&err, AiError::Unauthorized { message, .. } if message.contains("GEMINI_API_KEY"))
        );
        let (err, retry) = e(
            429,
            json!({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}),
        );
        assert!(retry && matches!(err, AiError::RateLimited { .. }));
        let (err, _) = e(
            404,
            json!({"error": {"code": 404, "message": "models/x is not found for API version v1beta", "status": "NOT_FOUND"}}),
        );
        assert!(matches!(err, AiError::UnknownModel { .. }));
        let (err, retry) = e(
            503,
            json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
        );
        assert!(retry && matches!(err, AiError::Server { status: 503, .. }));
        let (err, _) = e(
            400,
            json!({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}),
        );
        assert!(matches!(err, AiError::ContextLength { .. }));
        let (err, retry) = e(
            400,
            json!({"error": {"code": 400, "message": "Invalid JSON payload received. Unknown name \"additionalProperties\"", "status": "INVALID_ARGUMENT"}}),
        );
        assert!(!retry && matches!(err, AiError::Rejected { status: 400, .. }));
    }
}
