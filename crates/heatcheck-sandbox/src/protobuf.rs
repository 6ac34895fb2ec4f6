//! Kubernetes protobuf on the wire (`application/vnd.kubernetes.protobuf`):
//! the `k8s\0` envelope around a runtime.Unknown, and a generic transcoder
//! between the upstream messages and the JSON the store keeps.
//!
//! No code per kind: the message definitions are the upstream .proto files
//! (proto/, compiled by build.rs), read through reflection. What a .proto
//! cannot say about the JSON form (which zero values Go leaves out, inlined
//! structs, the few JSON names that differ) comes from proto/go-fields.tsv,
//! extracted from the Go struct tags of the same release. The JSON produced
//! is what encoding/json makes of the Go struct the bytes decode into.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use prost_reflect::prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value as PValue,
};
use serde_json::{json, Map, Number, Value};

/// The media type of Kubernetes protobuf.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these four bytes.
const MAGIC: &[u8; 4] = b"k8s\0";

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum ProtoError {
    #[error("the protobuf body does not start with the Kubernetes magic number \"k8s\\x00\"")]
    NoMagic,
    #[error(
        "the protobuf envelope names no kind (typeMeta.apiVersion and typeMeta.kind are required)"
    )]
    NoKind,
    /// Not a built-in kind (a CRD, or a group that is not vendored).
    #[error("no protobuf encoding is known for {kind} in {api_version}")]
    UnknownKind { api_version: String, kind: String },
    #[error("the protobuf body could not be decoded as {message}: {reason}")]
    Decode { message: String, reason: String },
    #[error("{path}: {reason}")]
    Encode { path: String, reason: String },
}

/// The compiled descriptor set of proto/ (see build.rs).
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/k8s.pb"))[..])
            .expect("the descriptor set compiled by build.rs decodes")
    })
}

/// What proto/go-fields.tsv says about one message.
#[derive(Default)]
struct MessageInfo {
    /// Scalars Go leaves out of JSON when zero (non-pointer, `omitempty`).
    omitempty: HashSet<String>,
    /// Message fields whose fields are the parent's in JSON (`json:",inline"`).
    inline: HashSet<String>,
    /// Proto name -> JSON name where they differ; "-" is never in JSON.
    json: HashMap<String, String>,
    /// `type X []T`: the message `{repeated items}` is a JSON array.
    items: bool,
}

struct GoFields {
    messages: HashMap<String, MessageInfo>,
    /// API group -> proto packages of its versions.
    groups: HashMap<String, Vec<String>>,
}

fn go_fields() -> &'static GoFields {
    static FIELDS: OnceLock<GoFields> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut g = GoFields {
            messages: HashMap::new(),
            groups: HashMap::new(),
        };
        for line in include_str!("../proto/go-fields.tsv").lines() {
            let cols: Vec<&str> = line.split('\t').collect();
            let [name, field, what] = cols[..] else {
                continue;
            };
            if let Some(group) = what.strip_prefix("group=") {
                g.groups
                    .entry(group.to_string())
                    .or_default()
                    .push(name.to_string());
                continue;
            }
            let info = g.messages.entry(name.to_string()).or_default();
            match what {
                "omitempty" => {
                    info.omitempty.insert(field.to_string());
                }
                "inline" => {
                    info.inline.insert(field.to_string());
                }
                "items" => info.items = true,
                _ => {
                    if let Some(j) = what.strip_prefix("json=") {
                        info.json.insert(field.to_string(), j.to_string());
                    }
                }
            }
        }
        g
    })
}

fn info(desc: &MessageDescriptor) -> Option<&'static MessageInfo> {
    go_fields().messages.get(desc.full_name())
}

/// The message of a kind: `k8s.io.api.<group dir>.<version>.<Kind>`, or one
/// of the meta/v1 kinds every group version serves (Status, DeleteOptions,
/// APIVersions...). None for CRDs and groups without vendored definitions.
pub(crate) fn message_for(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let packages = go_fields().groups.get(group)?;
    let package = packages
        .iter()
        .find(|p| p.rsplit('.').next() == Some(version))?;
    pool()
        .get_message_by_name(&format!("{package}.{kind}"))
        .or_else(|| pool().get_message_by_name(&format!("{META}.{kind}")))
}

/// Decodes a `k8s\0` envelope into the object's JSON (apiVersion and kind
/// from the envelope's typeMeta).
pub(crate) fn decode_object(body: &[u8]) -> Result<Value, ProtoError> {
    let raw = body.strip_prefix(MAGIC).ok_or(ProtoError::NoMagic)?;
    let unknown_desc = pool()
        .get_message_by_name(UNKNOWN)
        .expect("runtime.Unknown is vendored");
    let unknown = DynamicMessage::decode(unknown_desc, raw).map_err(|e| ProtoError::Decode {
        message: "runtime.Unknown".into(),
        reason: e.to_string(),
    })?;
    let text = |m: &DynamicMessage, f: &str| {
        m.get_field_by_name(f)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let type_meta = unknown
        .get_field_by_name("typeMeta")
        .and_then(|v| v.as_message().cloned());
    let (api_version, kind) = type_meta
        .map(|t| (text(&t, "apiVersion"), text(&t, "kind")))
        .unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtoError::NoKind);
    }
    let encoding = text(&unknown, "contentEncoding");
    if !encoding.is_empty() {
        return Err(ProtoError::Decode {
            message: kind,
            reason: format!("content encoding {encoding:?} is not supported"),
        });
    }
    let desc = message_for(&api_version, &kind).ok_or_else(|| ProtoError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let bytes = unknown
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let msg = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| ProtoError::Decode {
        message: desc.full_name().to_string(),
        reason: e.to_string(),
    })?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    if let Value::Object(fields) = message_to_json(&msg)? {
        out.extend(fields);
    }
    Ok(Value::Object(out))
}

/// Encodes an object (with apiVersion and kind) into a `k8s\0` envelope.
pub(crate) fn encode_object(obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtoError::NoKind);
    }
    let desc = message_for(api_version, kind).ok_or_else(|| ProtoError::UnknownKind {
        api_version: api_version.into(),
        kind: kind.into(),
    })?;
    let msg = json_to_message(obj, &desc, kind)?;
    let unknown_desc = pool()
        .get_message_by_name(UNKNOWN)
        .expect("runtime.Unknown is vendored");
    let mut type_meta = DynamicMessage::new(
        unknown_desc
            .get_field_by_name("typeMeta")
            .and_then(|f| f.kind().as_message().cloned())
            .expect("runtime.Unknown has typeMeta"),
    );
    type_meta.set_field_by_name("apiVersion", PValue::String(api_version.into()));
    type_meta.set_field_by_name("kind", PValue::String(kind.into()));
    let mut unknown = DynamicMessage::new(unknown_desc);
    unknown.set_field_by_name("typeMeta", PValue::Message(type_meta));
    unknown.set_field_by_name("raw", PValue::Bytes(msg.encode_to_vec().into()));
    unknown.set_field_by_name("contentEncoding", PValue::String(String::new()));
    unknown.set_field_by_name("contentType", PValue::String(String::new()));
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    Ok(out)
}

// ---- protobuf -> JSON -------------------------------------------------------

fn decode_err(msg: &DynamicMessage, reason: impl Into<String>) -> ProtoError {
    ProtoError::Decode {
        message: msg.descriptor().full_name().to_string(),
        reason: reason.into(),
    }
}

/// One message as Go's encoding/json writes the struct it decodes into.
fn message_to_json(msg: &DynamicMessage) -> Result<Value, ProtoError> {
    let desc = msg.descriptor();
    let num = |f: &str| {
        msg.get_field_by_name(f)
            .map(|v| match v.as_ref() {
                PValue::I64(n) => *n,
                PValue::I32(n) => i64::from(*n),
                _ => 0,
            })
            .unwrap_or(0)
    };
    let present = |f: &str| msg.has_field_by_name(f);
    match desc.full_name() {
        // A zero time is an empty message; Go writes it as null.
        TIME | MICRO_TIME => {
            if !present("seconds") && !present("nanos") {
                return Ok(Value::Null);
            }
            let micro = desc.full_name() == MICRO_TIME;
            let nanos = if micro { num("nanos") / 1000 * 1000 } else { 0 };
            let t = DateTime::<Utc>::from_timestamp(num("seconds"), nanos as u32)
                .ok_or_else(|| decode_err(msg, "time out of range"))?;
            let format = if micro {
                SecondsFormat::Micros
            } else {
                SecondsFormat::Secs
            };
            return Ok(json!(t.to_rfc3339_opts(format, true)));
        }
        DURATION => return Ok(json!(go_duration(num("duration")))),
        INT_OR_STRING => {
            return Ok(if num("type") == 1 {
                json!(msg
                    .get_field_by_name("strVal")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default())
            } else {
                json!(num("intVal"))
            })
        }
        QUANTITY => {
            let s = msg
                .get_field_by_name("string")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return Ok(json!(s));
        }
        RAW_EXTENSION | FIELDS_V1 => {
            let field = if desc.full_name() == FIELDS_V1 {
                "Raw"
            } else {
                "raw"
            };
            let raw = msg
                .get_field_by_name(field)
                .and_then(|v| v.as_bytes().cloned())
                .unwrap_or_default();
            return raw_to_json(&raw).map_err(|e| decode_err(msg, e));
        }
        _ => {}
    }
    let info = info(&desc);
    if info.is_some_and(|i| i.items) {
        let items = msg
            .get_field_by_name("items")
            .map(|v| v.into_owned())
            .unwrap_or(PValue::List(vec![]));
        return field_to_json(&items);
    }
    let mut out = Map::new();
    for field in desc.fields() {
        if !msg.has_field(&field) {
            continue;
        }
        let name = field.name();
        let json_name = info.and_then(|i| i.json.get(name)).map(String::as_str);
        if json_name == Some("-") {
            continue;
        }
        let value = msg.get_field(&field);
        let scalar = !field.is_list() && !field.is_map() && field.kind().as_message().is_none();
        if scalar
            && info.is_some_and(|i| i.omitempty.contains(name))
            && value.is_default(&field.kind())
        {
            continue;
        }
        let v = field_to_json(&value)?;
        if info.is_some_and(|i| i.inline.contains(name)) {
            if let Value::Object(inner) = v {
                out.extend(inner);
            }
            continue;
        }
        out.insert(json_name.unwrap_or(name).to_string(), v);
    }
    Ok(Value::Object(out))
}

/// RawExtension and FieldsV1 carry JSON; a nested protobuf object is decoded.
fn raw_to_json(raw: &[u8]) -> Result<Value, String> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(MAGIC) {
        // Nesting is bounded: each level is a new decode, outside prost's
        // own recursion limit.
        thread_local!(static DEPTH: std::cell::Cell<u8> = const { std::cell::Cell::new(0) });
        let depth = DEPTH.with(|d| d.get());
        if depth >= 8 {
            return Err("embedded objects nested too deeply".into());
        }
        DEPTH.with(|d| d.set(depth + 1));
        let out = decode_object(raw).map_err(|e| e.to_string());
        DEPTH.with(|d| d.set(depth));
        return out;
    }
    serde_json::from_slice(raw).map_err(|e| format!("embedded object is not JSON: {e}"))
}

fn field_to_json(v: &PValue) -> Result<Value, ProtoError> {
    match v {
        PValue::List(items) => items
            .iter()
            .map(value_to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        PValue::Map(m) => {
            let mut entries: Vec<(String, Value)> = m
                .iter()
                .map(|(k, v)| Ok((map_key(k), value_to_json(v)?)))
                .collect::<Result<_, ProtoError>>()?;
            // Go writes map keys sorted.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Value::Object(entries.into_iter().collect()))
        }
        other => value_to_json(other),
    }
}

fn map_key(k: &MapKey) -> String {
    match k {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

fn value_to_json(v: &PValue) -> Result<Value, ProtoError> {
    Ok(match v {
        PValue::Bool(b) => json!(b),
        PValue::I32(n) => json!(n),
        PValue::I64(n) => json!(n),
        PValue::U32(n) => json!(n),
        PValue::U64(n) => json!(n),
        PValue::F32(n) => Number::from_f64(f64::from(*n)).map_or(Value::Null, Value::Number),
        PValue::F64(n) => Number::from_f64(*n).map_or(Value::Null, Value::Number),
        PValue::String(s) => json!(s),
        // Go's []byte is base64 in JSON (Secret.data).
        PValue::Bytes(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        PValue::EnumNumber(n) => json!(n),
        PValue::Message(m) => message_to_json(m)?,
        PValue::List(_) | PValue::Map(_) => Value::Null,
    })
}

// ---- JSON -> protobuf -------------------------------------------------------

fn encode_err(path: &str, reason: impl Into<String>) -> ProtoError {
    ProtoError::Encode {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn json_to_message(
    v: &Value,
    desc: &MessageDescriptor,
    path: &str,
) -> Result<DynamicMessage, ProtoError> {
    let mut msg = DynamicMessage::new(desc.clone());
    let set = |msg: &mut DynamicMessage, f: &str, val: PValue| msg.set_field_by_name(f, val);
    match desc.full_name() {
        TIME | MICRO_TIME => {
            if let Some(s) = v.as_str() {
                let t = DateTime::parse_from_rfc3339(s)
                    .map_err(|e| encode_err(path, format!("not an RFC 3339 time: {e}")))?;
                set(&mut msg, "seconds", PValue::I64(t.timestamp()));
                if desc.full_name() == MICRO_TIME {
                    let micros = t.timestamp_subsec_micros() as i32;
                    set(&mut msg, "nanos", PValue::I32(micros * 1000));
                }
            } else if !v.is_null() {
                return Err(encode_err(path, "a time must be a string"));
            }
            return Ok(msg);
        }
        DURATION => {
            let s = v
                .as_str()
                .ok_or_else(|| encode_err(path, "a duration must be a string"))?;
            let ns = parse_go_duration(s).ok_or_else(|| {
                encode_err(path, format!("{s:?} is not a duration such as \"1m30s\""))
            })?;
            set(&mut msg, "duration", PValue::I64(ns));
            return Ok(msg);
        }
        INT_OR_STRING => {
            match v {
                Value::String(s) => {
                    set(&mut msg, "type", PValue::I64(1));
                    set(&mut msg, "strVal", PValue::String(s.clone()));
                }
                Value::Number(n) => {
                    let i = n
                        .as_i64()
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or_else(|| encode_err(path, "not a 32-bit integer"))?;
                    set(&mut msg, "type", PValue::I64(0));
                    set(&mut msg, "intVal", PValue::I32(i));
                }
                _ => return Err(encode_err(path, "must be an integer or a string")),
            }
            return Ok(msg);
        }
        QUANTITY => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(encode_err(path, "a quantity must be a string or a number")),
            };
            set(&mut msg, "string", PValue::String(s));
            return Ok(msg);
        }
        RAW_EXTENSION | FIELDS_V1 => {
            let field = if desc.full_name() == FIELDS_V1 {
                "Raw"
            } else {
                "raw"
            };
            if !v.is_null() {
                let raw = serde_json::to_vec(v).unwrap_or_default();
                set(&mut msg, field, PValue::Bytes(raw.into()));
            }
            return Ok(msg);
        }
        _ => {}
    }
    let info = info(desc);
    if info.is_some_and(|i| i.items) {
        if let Some(field) = desc.get_field_by_name("items") {
            let list = json_to_field(v, &field, path)?;
            msg.set_field(&field, list);
        }
        return Ok(msg);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| encode_err(path, "must be an object"))?;
    for field in desc.fields() {
        let name = field.name();
        let sub = format!("{path}.{name}");
        if info.is_some_and(|i| i.inline.contains(name)) {
            let Some(inner) = field.kind().as_message().cloned() else {
                continue;
            };
            msg.set_field(&field, PValue::Message(json_to_message(v, &inner, path)?));
            continue;
        }
        let json_name = info
            .and_then(|i| i.json.get(name))
            .map(String::as_str)
            .unwrap_or(name);
        let Some(value) = obj.get(json_name) else {
            continue;
        };
        if value.is_null() {
            // Go writes a zero time (JSON null) as an empty message.
            if let Some(m) = field.kind().as_message() {
                if !field.is_list() && matches!(m.full_name(), TIME | MICRO_TIME) {
                    msg.set_field(&field, PValue::Message(DynamicMessage::new(m.clone())));
                }
            }
            continue;
        }
        msg.set_field(&field, json_to_field(value, &field, &sub)?);
    }
    Ok(msg)
}

fn json_to_field(v: &Value, field: &FieldDescriptor, path: &str) -> Result<PValue, ProtoError> {
    if field.is_map() {
        let entry = field
            .kind()
            .as_message()
            .cloned()
            .ok_or_else(|| encode_err(path, "map without an entry type"))?;
        let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let obj = v
            .as_object()
            .ok_or_else(|| encode_err(path, "must be an object"))?;
        let mut m = HashMap::new();
        for (k, val) in obj {
            let key = match kf.kind() {
                Kind::String => MapKey::String(k.clone()),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                    MapKey::I32(k.parse().map_err(|_| encode_err(path, "bad map key"))?)
                }
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                    MapKey::I64(k.parse().map_err(|_| encode_err(path, "bad map key"))?)
                }
                _ => return Err(encode_err(path, "unsupported map key type")),
            };
            m.insert(key, json_to_value(val, &vf.kind(), &format!("{path}.{k}"))?);
        }
        return Ok(PValue::Map(m));
    }
    if field.is_list() {
        let items = v
            .as_array()
            .ok_or_else(|| encode_err(path, "must be an array"))?;
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| json_to_value(item, &field.kind(), &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(PValue::List);
    }
    json_to_value(v, &field.kind(), path)
}

fn json_to_value(v: &Value, kind: &Kind, path: &str) -> Result<PValue, ProtoError> {
    let int = |v: &Value| -> Result<i64, ProtoError> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| encode_err(path, "must be an integer")),
            Value::String(s) => s
                .parse()
                .map_err(|_| encode_err(path, "must be an integer")),
            _ => Err(encode_err(path, "must be an integer")),
        }
    };
    let range = |n: i64| encode_err(path, format!("{n} is out of range"));
    Ok(match kind {
        Kind::Message(m) => PValue::Message(json_to_message(v, m, path)?),
        Kind::String => PValue::String(
            v.as_str()
                .ok_or_else(|| encode_err(path, "must be a string"))?
                .to_string(),
        ),
        Kind::Bool => PValue::Bool(
            v.as_bool()
                .ok_or_else(|| encode_err(path, "must be a boolean"))?,
        ),
        Kind::Bytes => {
            let s = v
                .as_str()
                .ok_or_else(|| encode_err(path, "must be a base64 string"))?;
            PValue::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| encode_err(path, format!("not base64: {e}")))?
                    .into(),
            )
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let n = int(v)?;
            PValue::I32(i32::try_from(n).map_err(|_| range(n))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PValue::I64(int(v)?),
        Kind::Uint32 | Kind::Fixed32 => {
            let n = int(v)?;
            PValue::U32(u32::try_from(n).map_err(|_| range(n))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let n = int(v)?;
            PValue::U64(u64::try_from(n).map_err(|_| range(n))?)
        }
        Kind::Double => PValue::F64(
            v.as_f64()
                .ok_or_else(|| encode_err(path, "must be a number"))?,
        ),
        Kind::Float => PValue::F32(
            v.as_f64()
                .ok_or_else(|| encode_err(path, "must be a number"))? as f32,
        ),
        Kind::Enum(_) => PValue::EnumNumber(int(v)? as i32),
    })
}

// ---- Go durations -----------------------------------------------------------

/// Go's time.Duration.String: "1h2m3.5s", "1.5ms", "0s".
pub(crate) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let frac = |v: u64, digits: u32| {
        let p = 10u64.pow(digits);
        let (whole, rest) = (v / p, v % p);
        if rest == 0 {
            whole.to_string()
        } else {
            let r = format!("{rest:0width$}", width = digits as usize);
            format!("{whole}.{}", r.trim_end_matches('0'))
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 6));
    }
    let (h, rest) = (u / 3_600_000_000_000, u % 3_600_000_000_000);
    let (m, s) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = format!("{}s", frac(s, 9));
    match (h, m) {
        (0, 0) => format!("{sign}{secs}"),
        (0, m) => format!("{sign}{m}m{secs}"),
        (h, m) => format!("{sign}{h}h{m}m{secs}"),
    }
}

/// Go's time.ParseDuration (units ns, us, µs, ms, s, m, h).
pub(crate) fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u_end..];
        total += n * unit;
    }
    let ns = total.round();
    if ns > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(ns as i64) } else { ns as i64 })
}

#[cfg(test)]
mod tests;
