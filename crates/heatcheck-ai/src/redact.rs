//! Redaction of everything that leaves the cluster for an LLM: Secrets
//! become names and keys, and values that look like credentials are masked
//! wherever they appear. Masking is deliberately eager: a false positive
//! costs the model a detail, a false negative leaks a credential.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

/// What a masked value becomes.
pub(crate) const MASK: &str = "***";

/// Env var names that hold credentials (case-insensitive substring).
const CREDENTIAL_NAME_PARTS: &[&str] = &[
    "password",
    "passwd",
    "token",
    "secret",
    "key",
    "credential",
    "apikey",
];

static PEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
    )
    .expect("regex")
});
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}").expect("regex"));
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@").expect("regex")
});
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}").expect("regex")
});
/// `password=...`, `token: ...` inside free text (args, messages).
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([A-Za-z0-9_.-]*(?:password|passwd|token|secret|api[_-]?key|credential)[A-Za-z0-9_.-]*)([ \t]*[=:][ \t]*)([^\s,;&'"]+)"#)
        .expect("regex")
});
static BASE64_BLOB: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_-]{40,}={0,2}").expect("regex"));

/// True when an env var (or data key) name suggests a credential.
pub(crate) fn is_credential_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_NAME_PARTS.iter().any(|p| lower.contains(p))
}

/// Masks credential-looking parts of free text: PEM private keys, bearer /
/// basic tokens, `user:password@` in URLs, JWTs, `password=...` pairs.
pub(crate) fn redact_text(s: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(s);
    let mut apply = |re: &Regex, rep: &str| {
        if re.is_match(&out) {
            out = Cow::Owned(re.replace_all(&out, rep).into_owned());
        }
    };
    apply(
        &PEM,
        "-----BEGIN PRIVATE KEY----- *** -----END PRIVATE KEY-----",
    );
    apply(&BEARER, "$1 ***");
    apply(&URL_USERINFO, "${1}***:***@");
    apply(&JWT, MASK);
    if ASSIGNMENT.is_match(&out) {
        let replaced = ASSIGNMENT.replace_all(&out, |c: &regex::Captures| {
            // `secretName: tls-cert`, `tokenRef=x`: names of things, not values.
            let key = c[1].to_ascii_lowercase();
            if key.ends_with("name")
                || key.ends_with("ref")
                || key.ends_with("keys")
                || &c[3] == MASK
            {
                c[0].to_string()
            } else {
                format!("{}{}{MASK}", &c[1], &c[2])
            }
        });
        out = Cow::Owned(replaced.into_owned());
    }
    out
}

/// Masks runs of 40 or more base64 characters (certificates, keys, tokens
/// stored in annotations or ConfigMaps).
pub(crate) fn redact_blobs(s: &str) -> Cow<'_, str> {
    // A run that is a plain word or path is not a blob: require a digit and a letter.
    let looks_encoded = |m: &str| {
        m.bytes().any(|b| b.is_ascii_digit()) && m.bytes().any(|b| b.is_ascii_alphabetic())
    };
    if !BASE64_BLOB.find_iter(s).any(|m| looks_encoded(m.as_str())) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        BASE64_BLOB
            .replace_all(s, |c: &regex::Captures| {
                if looks_encoded(&c[0]) {
                    MASK.to_string()
                } else {
                    c[0].to_string()
                }
            })
            .into_owned(),
    )
}

/// Redacts one Kubernetes object in place (as gathered or from a manifest).
pub(crate) fn redact_object(obj: &mut Value) {
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind == "Secret" {
        redact_secret(obj);
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            for v in a.values_mut() {
                mask_blobs(v);
            }
        }
    }
    if kind == "ConfigMap" {
        for field in ["data", "binaryData"] {
            if let Some(data) = obj.get_mut(field).and_then(Value::as_object_mut) {
                for (k, v) in data.iter_mut() {
                    if field == "binaryData" || is_credential_name(k) {
                        *v = Value::String(MASK.into());
                    } else {
                        mask_blobs(v);
                    }
                }
            }
        }
    }
    mask_env(obj);
    redact_strings(obj);
}

/// A Secret keeps its name, type and key names; never a value.
fn redact_secret(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let mut keys: Vec<String> = Vec::new();
    for field in ["data", "stringData"] {
        if let Some(Value::Object(d)) = map.remove(field) {
            keys.extend(d.keys().cloned());
        }
    }
    keys.sort();
    keys.dedup();
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        // Annotations of a Secret may carry its content (last-applied-configuration).
        meta.remove("annotations");
    }
    map.insert(
        "dataKeys".into(),
        Value::Array(keys.into_iter().map(Value::String).collect()),
    );
}

fn mask_blobs(v: &mut Value) {
    if let Value::String(s) = v {
        if let Cow::Owned(r) = redact_blobs(s) {
            *s = r;
        }
    }
}

/// Every `env: [{name, value}]` list anywhere in the object: credential-named
/// entries lose their value.
fn mask_env(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(env)) = map.get_mut("env") {
                for entry in env.iter_mut() {
                    mask_env_entry(entry);
                }
            }
            for (k, child) in map.iter_mut() {
                if k != "env" {
                    mask_env(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_env),
        _ => {}
    }
}

fn mask_env_entry(entry: &mut Value) {
    let Some(e) = entry.as_object_mut() else {
        return;
    };
    let credential = e
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(is_credential_name);
    if credential && e.get("value").is_some() {
        e.insert("value".into(), Value::String(MASK.into()));
    }
}

/// [`redact_text`] on every string (keys included) inside `v`.
pub(crate) fn redact_strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(r) = redact_text(s) {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(map) => {
            let needs_key_change = map.keys().any(|k| matches!(redact_text(k), Cow::Owned(_)));
            if needs_key_change {
                let old = std::mem::take(map);
                let mut new = Map::with_capacity(old.len());
                for (k, mut val) in old {
                    redact_strings(&mut val);
                    new.insert(redact_text(&k).into_owned(), val);
                }
                *map = new;
            } else {
                map.values_mut().for_each(redact_strings);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLANT: &str = "hunter2-planted-Zq9";

    fn dump(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn secrets_keep_names_and_keys_only() {
        let mut s = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{{\"stringData\":{{\"pw\":\"{PLANT}\"}}}}")}},
            "type": "Opaque",
            "data": {"password": base64_of(PLANT)},
            "stringData": {"user": PLANT}
        });
        redact_object(&mut s);
        assert_eq!(s["dataKeys"], json!(["password", "user"]));
        assert_eq!(s["metadata"]["name"], "db");
        let text = dump(&s);
        assert!(
            !text.contains(PLANT) && !text.contains(&base64_of(PLANT)),
            "{text}"
        );
    }

    fn base64_of(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn credential_env_values_are_masked_in_any_container_list() {
        let mut d = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "initContainers": [{"name": "i", "env": [{"name": "Db_PassWord", "value": PLANT}]}],
            "containers": [{"name": "c", "env": [
                {"name": "API_TOKEN", "value": PLANT},
                {"name": "MY_APIKEY", "value": PLANT},
                {"name": "aws_secret_access", "value": PLANT},
                {"name": "GCP_CREDENTIALS", "value": PLANT},
                {"name": "SIGNING_KEY", "value": PLANT},
                {"name": "PASSWD", "value": PLANT},
                {"name": "LOG_LEVEL", "value": "debug"},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
            ]}]
        }}}});
        redact_object(&mut d);
        let text = dump(&d);
        assert!(!text.contains(PLANT), "{text}");
        assert!(text.contains("\"debug\""));
        assert!(text.contains("secretKeyRef"), "references are kept: {text}");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
            MASK
        );
    }

    #[test]
    fn bearer_tokens_are_masked() {
        let t = redact_text("curl -H 'Authorization: Bearer abcDEF123456.xyz' http://x");
        assert_eq!(t, "curl -H 'Authorization: Bearer ***' http://x");
        assert_eq!(redact_text("basic dXNlcjpwYXNzd29yZA=="), "basic ***");
        assert_eq!(redact_text("a bearer of news"), "a bearer of news");
    }

    #[test]
    fn pem_private_keys_are_masked() {
        let pem = format!("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIE{PLANT}\nabc\n-----END RSA PRIVATE KEY-----\ntail");
        let t = redact_text(&pem);
        assert!(
            !t.contains(PLANT) && t.ends_with("tail") && t.starts_with("key:"),
            "{t}"
        );
        // A truncated key is masked to the end.
        let t = redact_text(&format!("-----BEGIN PRIVATE KEY-----\n{PLANT}")).into_owned();
        assert!(!t.contains(PLANT), "{t}");
        // Certificates are public.
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(redact_text(cert), cert);
    }

    #[test]
    fn url_userinfo_is_masked() {
        let t = redact_text(&format!(
            "postgres://admin:{PLANT}@db.shop:5432/orders and http://plain.example/x"
        ))
        .into_owned();
        assert_eq!(
            t,
            "postgres://***:***@db.shop:5432/orders and http://plain.example/x"
        );
    }

    #[test]
    fn jwts_are_masked() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(redact_text(&format!("token {jwt} end")), "token *** end");
    }

    #[test]
    fn assignments_in_free_text_are_masked() {
        assert_eq!(
            redact_text(&format!("--db-password={PLANT} --port=80")),
            "--db-password=*** --port=80"
        );
        assert_eq!(redact_text("api_key: abc123"), "api_key: ***");
        assert_eq!(redact_text("secretName: tls-cert"), "secretName: tls-cert");
        assert_eq!(
            redact_text("secretKeyRef:\n  key: password"),
            "secretKeyRef:\n  key: password"
        );
    }

    #[test]
    fn long_base64_blobs_in_annotations_and_configmaps_are_masked() {
        let blob = base64_of(&format!("{PLANT}{PLANT}{PLANT}"));
        assert!(blob.len() >= 40);
        let mut o = json!({"kind": "ConfigMap",
            "metadata": {"name": "cm", "annotations": {"example.com/cert": blob, "team": "payments"}},
            "data": {"ca.b64": blob, "nginx.conf": "server { listen 80; }", "path": "/usr/share/nginx/html/index-of-the-static-site-files"},
            "binaryData": {"x": "AAAA"}});
        redact_object(&mut o);
        let text = dump(&o);
        assert!(!text.contains(&blob), "{text}");
        assert_eq!(o["metadata"]["annotations"]["team"], "payments");
        assert_eq!(o["data"]["nginx.conf"], "server { listen 80; }");
        assert_eq!(
            o["data"]["path"],
            "/usr/share/nginx/html/index-of-the-static-site-files"
        );
        assert_eq!(o["binaryData"]["x"], MASK);
        // A 39-character run is kept.
        assert_eq!(redact_blobs(&"a1".repeat(19)), "a1".repeat(19) + "");
    }
}
