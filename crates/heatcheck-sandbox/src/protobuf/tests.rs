use super::*;
use proptest::prelude::*;

fn round_trip(v: &Value) -> Value {
    let bytes = encode_object(v).unwrap_or_else(|e| panic!("encode {v}: {e}"));
    assert!(bytes.starts_with(b"k8s\0"));
    decode_object(&bytes).unwrap_or_else(|e| panic!("decode {v}: {e}"))
}

/// A `k8s\0` envelope around `raw`, built field by field.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let desc = pool().get_message_by_name(UNKNOWN).unwrap();
    let tm_desc = desc.get_field_by_name("typeMeta").unwrap().kind();
    let mut tm = DynamicMessage::new(tm_desc.as_message().unwrap().clone());
    tm.set_field_by_name("apiVersion", PValue::String(api_version.into()));
    tm.set_field_by_name("kind", PValue::String(kind.into()));
    let mut u = DynamicMessage::new(desc);
    u.set_field_by_name("typeMeta", PValue::Message(tm));
    u.set_field_by_name("raw", PValue::Bytes(raw.to_vec().into()));
    [&b"k8s\0"[..], &u.encode_to_vec()].concat()
}

#[test]
fn kinds_map_to_upstream_messages_by_group_and_version() {
    let name = |av: &str, k: &str| message_for(av, k).map(|m| m.full_name().to_string());
    assert_eq!(
        name("v1", "ConfigMap").as_deref(),
        Some("k8s.io.api.core.v1.ConfigMap")
    );
    assert_eq!(
        name("apps/v1", "Deployment").as_deref(),
        Some("k8s.io.api.apps.v1.Deployment")
    );
    assert_eq!(
        name("rbac.authorization.k8s.io/v1", "ClusterRole").as_deref(),
        Some("k8s.io.api.rbac.v1.ClusterRole")
    );
    assert_eq!(
        name("authentication.k8s.io/v1", "TokenRequest").as_deref(),
        Some("k8s.io.api.authentication.v1.TokenRequest")
    );
    assert_eq!(
        name("autoscaling/v2", "HorizontalPodAutoscaler").as_deref(),
        Some("k8s.io.api.autoscaling.v2.HorizontalPodAutoscaler")
    );
    // meta/v1 kinds every group version serves.
    assert_eq!(
        name("v1", "Status").as_deref(),
        Some("k8s.io.apimachinery.pkg.apis.meta.v1.Status")
    );
    assert_eq!(
        name("apps/v1", "DeleteOptions").as_deref(),
        Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
    );
    // CRDs and unknown versions have no protobuf form.
    assert_eq!(name("gateway.networking.k8s.io/v1", "HTTPRoute"), None);
    assert_eq!(name("apps/v9", "Deployment"), None);
    assert_eq!(name("v1", "NoSuchKind"), None);
}

#[test]
fn special_encodings_follow_go_json() {
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "creationTimestamp": "2024-02-29T12:34:56Z",
                     "labels": {"b": "2", "a": "1"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"metadata": {"creationTimestamp": null}, "spec": {
                "containers": [{"name": "c", "image": "nginx",
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5}}],
                "volumes": [{"name": "cfg", "configMap": {"name": "settings", "optional": false}}],
                "terminationGracePeriodSeconds": 0
            }}
        }
    });
    assert_eq!(round_trip(&obj), obj);
}

#[test]
fn omitempty_scalars_drop_their_zero_and_pointers_keep_it() {
    // minReadySeconds and paused are plain `omitempty` Go fields: zero is
    // written on the wire but Go leaves it out of JSON. replicas is a pointer.
    let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "", "generation": 0},
        "spec": {"replicas": 0, "minReadySeconds": 0, "paused": false, "selector": {}, "template": {}}});
    let back = round_trip(&obj);
    assert_eq!(
        back,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"replicas": 0, "selector": {}, "template": {}}})
    );
}

#[test]
fn times_durations_bytes_and_renamed_fields() {
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e"}, "eventTime": "2024-01-02T03:04:05.123456Z",
        "reportingController": "x", "reportingInstance": "y", "action": "a", "reason": "r"});
    assert_eq!(round_trip(&ev), ev);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"k": "AP8Q"}, "type": "Opaque"});
    assert_eq!(round_trip(&secret), secret);
    let ic = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "i"}, "spec": {"controller": "c",
        "parameters": {"apiGroup": "g", "kind": "K", "name": "n"}}});
    assert_eq!(round_trip(&ic), ic);
    // `type X []string` messages are JSON arrays.
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "metadata": {}, "spec": {"user": "u", "extra": {"scopes": ["a", "b"]},
        "resourceAttributes": {"verb": "get", "resource": "pods"}}, "status": {"allowed": true}});
    assert_eq!(round_trip(&sar), sar);
    let fs = json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": "f", "managedFields": [{"manager": "m", "operation": "Apply",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}, "time": "2024-01-01T00:00:00Z"}]},
        "spec": {"priorityLevelConfiguration": {"name": "p"}}});
    assert_eq!(round_trip(&fs), fs);
}

#[test]
fn go_durations_print_and_parse_like_go() {
    for (ns, s) in [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (1_000_000_000, "1s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-2_000_000_000, "-2s"),
    ] {
        assert_eq!(go_duration(ns), s);
        assert_eq!(parse_go_duration(s), Some(ns), "{s}");
    }
    assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
    assert_eq!(parse_go_duration("10"), None);
    assert_eq!(parse_go_duration("3 days"), None);
}

#[test]
fn bad_bodies_get_clear_errors() {
    assert_eq!(decode_object(b"{\"kind\": 1}"), Err(ProtoError::NoMagic));
    // An envelope without typeMeta.
    assert_eq!(decode_object(b"k8s\0"), Err(ProtoError::NoKind));
    let crd = envelope("example.io/v1", "Widget", &[]);
    assert!(matches!(
        decode_object(&crd),
        Err(ProtoError::UnknownKind { ref kind, .. }) if kind == "Widget"
    ));
    // A length prefix past the end of the object bytes.
    let garbage = envelope("v1", "ConfigMap", &[0x0a, 0x7f, 0x01]);
    assert!(matches!(
        decode_object(&garbage),
        Err(ProtoError::Decode { .. })
    ));
    let wrong = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 3}});
    assert_eq!(
        encode_object(&wrong).unwrap_err().to_string(),
        "ConfigMap.metadata.name: must be a string"
    );
}

// ---- proptest: JSON -> protobuf -> JSON over the common kinds --------------
//
// The generated objects are in Go's JSON form (no zero `omitempty` scalars),
// which is what the transcoder produces; they must come back unchanged.

fn dns() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,14}[a-z0-9]"
}

fn text() -> impl Strategy<Value = String> {
    "[ -~é😀]{1,12}"
}

fn string_map() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(dns(), "[ -~]{0,10}", 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect()))
}

fn time() -> impl Strategy<Value = String> {
    (0i64..4_000_000_000).prop_map(|s| {
        DateTime::<Utc>::from_timestamp(s, 0)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    })
}

fn int_or_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i32..65536).prop_map(|n| json!(n)),
        dns().prop_map(|s| json!(s)),
    ]
}

fn quantity() -> impl Strategy<Value = Value> {
    prop::sample::select(vec!["0", "1", "500m", "1.5", "128Mi", "2Gi", "1e3", "100k"])
        .prop_map(|s| json!(s))
}

fn insert_some(obj: &mut Value, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        obj[key] = v;
    }
}

fn non_empty_map(m: Value) -> Option<Value> {
    m.as_object().is_some_and(|o| !o.is_empty()).then_some(m)
}

fn metadata() -> impl Strategy<Value = Value> {
    (
        dns(),
        prop::option::of(dns()),
        string_map(),
        string_map(),
        prop::option::of(time()),
        prop::option::of(1i64..1000),
        prop::option::of("[0-9]{1,6}"),
        prop::collection::vec(dns(), 0..2),
        prop::option::of((dns(), any::<bool>())),
    )
        .prop_map(|(name, ns, labels, ann, ts, gen, rv, fins, owner)| {
            let mut m = json!({"name": name});
            insert_some(&mut m, "namespace", ns.map(|n| json!(n)));
            insert_some(&mut m, "labels", non_empty_map(labels));
            insert_some(&mut m, "annotations", non_empty_map(ann));
            // A zero creationTimestamp is null in Go's JSON.
            m["creationTimestamp"] = ts.map_or(Value::Null, |t| json!(t));
            insert_some(&mut m, "generation", gen.map(|g| json!(g)));
            insert_some(&mut m, "resourceVersion", rv.map(|r| json!(r)));
            if !fins.is_empty() {
                m["finalizers"] = json!(fins);
            }
            if let Some((owner, controller)) = owner {
                m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": owner, "uid": "u-1", "controller": controller}]);
            }
            m
        })
}

fn container() -> impl Strategy<Value = Value> {
    (
        dns(),
        "[a-z]{1,8}(:[0-9]\\.[0-9]{1,2})?",
        prop::collection::vec((1i32..65536, prop::sample::select(vec!["TCP", "UDP"])), 0..3),
        prop::collection::vec((dns(), "[ -~]{0,8}"), 0..3),
        prop::option::of((quantity(), quantity())),
        prop::option::of((dns(), int_or_string(), 1i32..60)),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(name, image, ports, env, res, probe, priv_esc)| {
            let mut c = json!({"name": name, "image": image});
            if !ports.is_empty() {
                c["ports"] = ports
                    .iter()
                    .map(|(p, proto)| json!({"containerPort": p, "protocol": proto}))
                    .collect();
            }
            if !env.is_empty() {
                // An empty value is omitted by Go (`value,omitempty`).
                c["env"] = env
                    .iter()
                    .map(|(n, v)| {
                        if v.is_empty() {
                            json!({"name": n})
                        } else {
                            json!({"name": n, "value": v})
                        }
                    })
                    .collect();
            }
            if let Some((cpu, mem)) = res {
                c["resources"] = json!({"limits": {"cpu": cpu, "memory": mem}});
            }
            if let Some((path, port, period)) = probe {
                c["readinessProbe"] =
                    json!({"httpGet": {"path": format!("/{path}"), "port": port}, "periodSeconds": period});
            }
            if let Some(b) = priv_esc {
                c["securityContext"] = json!({"allowPrivilegeEscalation": b});
            }
            c
        })
}

fn pod_spec() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(container(), 1..3),
        prop::collection::vec((dns(), dns(), any::<bool>()), 0..2),
        prop::option::of(0i64..120),
        prop::option::of(dns()),
    )
        .prop_map(|(containers, volumes, grace, node)| {
            let mut s = json!({"containers": containers});
            if !volumes.is_empty() {
                s["volumes"] = volumes
                    .iter()
                    .map(|(n, cm, secret)| {
                        if *secret {
                            json!({"name": n, "secret": {"secretName": cm, "defaultMode": 420}})
                        } else {
                            json!({"name": n, "configMap": {"name": cm}})
                        }
                    })
                    .collect();
            }
            insert_some(
                &mut s,
                "terminationGracePeriodSeconds",
                grace.map(|g| json!(g)),
            );
            insert_some(&mut s, "nodeName", node.map(|n| json!(n)));
            s
        })
}

fn object() -> impl Strategy<Value = Value> {
    let config_map = (
        metadata(),
        string_map(),
        prop::collection::btree_map(dns(), prop::collection::vec(any::<u8>(), 0..16), 0..3),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(meta, data, bin, immutable)| {
            let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta});
            insert_some(&mut o, "data", non_empty_map(data));
            if !bin.is_empty() {
                o["binaryData"] = bin
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(v)),
                        )
                    })
                    .collect();
            }
            insert_some(&mut o, "immutable", immutable.map(|b| json!(b)));
            o
        });
    let secret = (
        metadata(),
        prop::collection::btree_map(dns(), prop::collection::vec(any::<u8>(), 0..24), 0..3),
        prop::option::of(prop::sample::select(vec![
            "Opaque",
            "kubernetes.io/tls",
            "kubernetes.io/service-account-token",
        ])),
    )
        .prop_map(|(meta, data, ty)| {
            let mut o = json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta});
            if !data.is_empty() {
                o["data"] = data
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(v)),
                        )
                    })
                    .collect();
            }
            insert_some(&mut o, "type", ty.map(|t| json!(t)));
            o
        });
    let service = (
        metadata(),
        prop::collection::vec(
            (prop::option::of(dns()), 1i32..65536, int_or_string()),
            1..3,
        ),
        string_map(),
        prop::sample::select(vec!["ClusterIP", "NodePort", "LoadBalancer"]),
        prop::option::of("10\\.96\\.[0-9]{1,3}\\.[0-9]{1,3}"),
    )
        .prop_map(|(meta, ports, selector, ty, ip)| {
            let ports: Vec<Value> = ports
                .into_iter()
                .map(|(name, port, target)| {
                    let mut p = json!({"protocol": "TCP", "port": port, "targetPort": target});
                    insert_some(&mut p, "name", name.map(|n| json!(n)));
                    p
                })
                .collect();
            let mut spec = json!({"ports": ports, "type": ty});
            insert_some(&mut spec, "selector", non_empty_map(selector));
            if let Some(ip) = ip {
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec,
                   "status": {"loadBalancer": {}}})
        });
    let deployment = (
        metadata(),
        prop::option::of(0i32..10),
        string_map().prop_filter("a selector has labels", |m| m.as_object().is_some_and(|o| !o.is_empty())),
        pod_spec(),
        prop::option::of((int_or_string(), int_or_string())),
        prop::option::of(1i32..600),
    )
        .prop_map(|(meta, replicas, labels, pod, rolling, min_ready)| {
            let mut spec = json!({
                "selector": {"matchLabels": labels.clone()},
                "template": {"metadata": {"labels": labels, "creationTimestamp": null}, "spec": pod},
            });
            insert_some(&mut spec, "replicas", replicas.map(|r| json!(r)));
            if let Some((surge, unavailable)) = rolling {
                spec["strategy"] = json!({"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}});
            }
            insert_some(&mut spec, "minReadySeconds", min_ready.map(|m| json!(m)));
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec})
        });
    let pod = (
        metadata(),
        pod_spec(),
        prop::sample::select(vec!["Pending", "Running", "Succeeded"]),
        prop::option::of(time()),
        prop::collection::vec((dns(), any::<bool>(), time()), 0..3),
    )
        .prop_map(|(meta, spec, phase, start, conditions)| {
            let mut status = json!({"phase": phase});
            insert_some(&mut status, "startTime", start.map(|t| json!(t)));
            if !conditions.is_empty() {
                status["conditions"] = conditions
                    .into_iter()
                    .map(|(t, s, at)| {
                        json!({"type": t, "status": if s {"True"} else {"False"},
                               "lastProbeTime": null, "lastTransitionTime": at})
                    })
                    .collect();
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status})
        });
    let namespace = (
        metadata(),
        prop::collection::vec(dns(), 0..2),
        prop::sample::select(vec!["Active", "Terminating"]),
    )
        .prop_map(|(meta, fins, phase)| {
            let mut spec = json!({});
            if !fins.is_empty() {
                spec["finalizers"] = json!(fins);
            }
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta,
                   "spec": spec, "status": {"phase": phase}})
        });
    prop_oneof![config_map, secret, service, deployment, pod, namespace]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn json_protobuf_json_round_trips(obj in object()) {
        prop_assert_eq!(round_trip(&obj), obj);
    }

    #[test]
    fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), text_in in text()) {
        let mut body = b"k8s\0".to_vec();
        body.extend(&bytes);
        let _ = decode_object(&body);
        let _ = decode_object(text_in.as_bytes());
    }
}

// ---- on the wire, through the API handler ----------------------------------

mod api {
    use super::*;
    use crate::api::{handle, ApiState};
    use crate::store::Store;
    use axum::body::Body;
    use http::{header, Request};
    use http_body_util::BodyExt;

    const CMS: &str = "/api/v1/namespaces/default/configmaps";

    async fn send(
        st: &ApiState,
        method: &str,
        uri: &str,
        body: Vec<u8>,
        accept: &str,
    ) -> (u16, String, bytes::Bytes) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, MEDIA_TYPE)
            .header(header::ACCEPT, accept)
            .body(Body::from(body))
            .unwrap();
        let resp = handle(st, req).await;
        let code = resp.status().as_u16();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            code,
            ct,
            resp.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    const BOTH: &str = "application/vnd.kubernetes.protobuf, application/json";

    fn cm(name: &str, v: &str) -> Vec<u8> {
        encode_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "creationTimestamp": null}, "data": {"k": v}}))
        .unwrap()
    }

    #[tokio::test]
    async fn create_update_and_read_in_protobuf() {
        let st = ApiState::new(Store::new());
        let (code, ct, body) = send(&st, "POST", CMS, cm("a", "1"), BOTH).await;
        assert_eq!((code, ct.as_str()), (201, "application/json"));
        let created: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(created["data"]["k"], "1");
        let rv = created["metadata"]["resourceVersion"].clone();

        // Update (PUT) with the version read, in protobuf.
        let put = encode_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": rv}, "data": {"k": "2"}}))
        .unwrap();
        let (code, _, body) = send(&st, "PUT", &format!("{CMS}/a"), put, BOTH).await;
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));

        // A client that reads only protobuf gets protobuf, errors included.
        let (code, ct, body) = send(&st, "GET", &format!("{CMS}/a"), vec![], MEDIA_TYPE).await;
        assert_eq!((code, ct.as_str()), (200, MEDIA_TYPE));
        let got = decode_object(&body).unwrap();
        assert_eq!(
            (got["kind"].as_str(), got["data"]["k"].as_str()),
            (Some("ConfigMap"), Some("2"))
        );
        let (code, _, body) = send(&st, "GET", CMS, vec![], MEDIA_TYPE).await;
        assert_eq!(code, 200);
        let list = decode_object(&body).unwrap();
        assert_eq!(list["kind"], "ConfigMapList");
        assert_eq!(list["items"][0]["metadata"]["name"], "a");
        let (code, ct, body) = send(&st, "GET", &format!("{CMS}/nope"), vec![], MEDIA_TYPE).await;
        assert_eq!((code, ct.as_str()), (404, MEDIA_TYPE));
        let status = decode_object(&body).unwrap();
        assert_eq!(
            (status["kind"].as_str(), status["code"].as_i64()),
            (Some("Status"), Some(404))
        );
        // Watch streams stay JSON.
        let (code, _, _) = send(&st, "GET", &format!("{CMS}?watch=true"), vec![], MEDIA_TYPE).await;
        assert_eq!(code, 406);
    }

    #[tokio::test]
    async fn delete_options_may_be_protobuf() {
        let st = ApiState::new(Store::new());
        assert_eq!(send(&st, "POST", CMS, cm("a", "1"), BOTH).await.0, 201);
        let opts =
            encode_object(&json!({"apiVersion": "v1", "kind": "DeleteOptions", "dryRun": ["All"]}))
                .unwrap();
        let (code, _, _) = send(&st, "DELETE", &format!("{CMS}/a"), opts, BOTH).await;
        assert_eq!(code, 200);
        assert_eq!(
            send(&st, "GET", &format!("{CMS}/a"), vec![], BOTH).await.0,
            200,
            "dry run kept it"
        );
    }

    #[tokio::test]
    async fn custom_kinds_and_bad_bodies_are_refused_like_a_real_server() {
        let st = ApiState::new(Store::new());
        let route = envelope("gateway.networking.k8s.io/v1", "HTTPRoute", &[]);
        let (code, _, body) = send(
            &st,
            "POST",
            "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes",
            route,
            BOTH,
        )
        .await;
        assert_eq!(code, 415, "{}", String::from_utf8_lossy(&body));
        let (code, _, body) =
            send(&st, "POST", CMS, b"{\"kind\":\"ConfigMap\"}".to_vec(), BOTH).await;
        assert_eq!(code, 400);
        let status: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            status["message"].as_str().unwrap().contains("magic number"),
            "{status}"
        );
    }
}

#[test]
fn embedded_objects_decode_and_deep_nesting_is_refused() {
    // A ControllerRevision's data (RawExtension) may hold a protobuf object.
    let inner =
        encode_object(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))
            .unwrap();
    let revision = |data: Vec<u8>| {
        let desc = message_for("apps/v1", "ControllerRevision").unwrap();
        let mut m = DynamicMessage::new(desc.clone());
        let raw_desc = desc.get_field_by_name("data").unwrap().kind();
        let mut raw = DynamicMessage::new(raw_desc.as_message().unwrap().clone());
        raw.set_field_by_name("raw", PValue::Bytes(data.into()));
        m.set_field_by_name("data", PValue::Message(raw));
        m.set_field_by_name("revision", PValue::I64(1));
        envelope("apps/v1", "ControllerRevision", &m.encode_to_vec())
    };
    let one = decode_object(&revision(inner)).unwrap();
    assert_eq!(one["data"]["metadata"]["name"], "x");
    let mut deep = revision(b"{}".to_vec());
    for _ in 0..20 {
        deep = revision(deep);
    }
    assert!(decode_object(&deep).is_err());
}
