use super::*;

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}
fn cms() -> ResKey {
    ResKey::new("", "configmaps")
}
const W: WriteOptions = WriteOptions { dry_run: false };

#[test]
fn create_sets_server_metadata() {
    let s = Store::new();
    let o = s.create(&cms(), Some("default"), cm("a"), &W).unwrap();
    assert_eq!(o["metadata"]["namespace"], "default");
    assert!(o["metadata"]["uid"].is_string());
    let ts = o["metadata"]["creationTimestamp"].as_str().unwrap();
    assert_eq!(
        ts.len(),
        "2026-11-26T08:00:00Z".len(),
        "second precision: {ts}"
    );
    let e = s.create(&cms(), Some("default"), cm("a"), &W).unwrap_err();
    assert_eq!(e.reason, "AlreadyExists");
    let e = s.create(&cms(), Some("nope"), cm("b"), &W).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
}

#[test]
fn stale_update_is_a_conflict_and_noop_keeps_version() {
    let s = Store::new();
    let o = s.create(&cms(), Some("default"), cm("a"), &W).unwrap();
    let mut changed = o.clone();
    changed["data"]["a"] = json!("2");
    let o2 = s
        .update(&cms(), Some("default"), "a", changed.clone(), &W)
        .unwrap();
    assert_ne!(
        o2["metadata"]["resourceVersion"],
        o["metadata"]["resourceVersion"]
    );
    // Like kube-apiserver: a ConfigMap has no generation at all.
    assert!(o2["metadata"].get("generation").is_none(), "{o2}");
    changed["data"]["a"] = json!("3");
    let e = s
        .update(&cms(), Some("default"), "a", changed, &W)
        .unwrap_err();
    assert_eq!(e.reason, "Conflict");
    let o3 = s
        .update(&cms(), Some("default"), "a", o2.clone(), &W)
        .unwrap();
    assert_eq!(
        o3["metadata"]["resourceVersion"],
        o2["metadata"]["resourceVersion"]
    );
}

#[test]
fn finalizers_delay_deletion_until_removed() {
    let s = Store::new();
    let mut o = cm("f");
    o["metadata"]["finalizers"] = json!(["x/y"]);
    s.create(&cms(), Some("default"), o, &W).unwrap();
    let d = s
        .delete(&cms(), Some("default"), "f", &DeleteOptions::default())
        .unwrap();
    assert!(d["metadata"]["deletionTimestamp"].is_string());
    let mut cur = s.get(&cms(), Some("default"), "f").unwrap();
    cur["metadata"]["finalizers"] = json!([]);
    s.update(&cms(), Some("default"), "f", cur, &W).unwrap();
    assert_eq!(s.get(&cms(), Some("default"), "f").unwrap_err().code, 404);
}

#[test]
fn deleting_an_owner_deletes_dependents_and_namespaces_cascade() {
    let s = Store::new();
    let nsk = ResKey::new("", "namespaces");
    s.create(&nsk, None, json!({"metadata": {"name": "t"}}), &W)
        .unwrap();
    let owner = s.create(&cms(), Some("t"), cm("owner"), &W).unwrap();
    let mut dep = cm("dep");
    dep["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}]);
    s.create(&cms(), Some("t"), dep, &W).unwrap();
    s.create(&cms(), Some("t"), cm("other"), &W).unwrap();
    s.delete(&cms(), Some("t"), "owner", &DeleteOptions::default())
        .unwrap();
    assert!(s.get(&cms(), Some("t"), "dep").is_err());
    assert!(s.get(&cms(), Some("t"), "other").is_ok());
    s.delete(&nsk, None, "t", &DeleteOptions::default())
        .unwrap();
    assert!(s.get(&cms(), Some("t"), "other").is_err());
}

#[test]
fn list_pages_through_everything() {
    let s = Store::new();
    for i in 0..25 {
        s.create(&cms(), Some("default"), cm(&format!("c{i:02}")), &W)
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list(&cms(), Some("default"), &|_| true, Some(10), after.as_ref())
            .unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[24], "c24");
}

#[test]
fn watch_resumes_from_a_version() {
    let s = Store::new();
    let rv = s.resource_version();
    s.create(&cms(), Some("default"), cm("w1"), &W).unwrap();
    s.create(&cms(), Some("default"), cm("w2"), &W).unwrap();
    let (backlog, _rx) = s.watch(&cms(), None, Some(rv)).unwrap();
    assert_eq!(backlog.len(), 2);
    let (all, _rx) = s.watch(&cms(), Some("default"), None).unwrap();
    assert_eq!(all.len(), 2);
}

#[test]
fn dry_run_persists_nothing() {
    let s = Store::new();
    let rv = s.resource_version();
    s.create(
        &cms(),
        Some("default"),
        cm("d"),
        &WriteOptions { dry_run: true },
    )
    .unwrap();
    assert!(s.get(&cms(), Some("default"), "d").is_err());
    assert_eq!(s.resource_version(), rv);
}

#[test]
fn generate_name_and_invalid_names() {
    let s = Store::new();
    let o = s
        .create(
            &cms(),
            Some("default"),
            json!({"metadata": {"generateName": "gen-"}}),
            &W,
        )
        .unwrap();
    assert!(o["metadata"]["name"].as_str().unwrap().starts_with("gen-"));
    assert_eq!(
        s.create(&cms(), Some("default"), cm("Bad_Name"), &W)
            .unwrap_err()
            .code,
        422
    );
}
