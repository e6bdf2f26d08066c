//! The generated CRDs: committed YAML matches the Rust types, schemas are structural as the
//! apiserver requires (`k8s.io/apiextensions-apiserver/pkg/apiserver/schema`), CEL rules
//! compile within the cost budget, and the examples in `examples/` validate against the
//! schemas and their CEL rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use dmvpn_crds::{DmvpnHub, DmvpnNode, DmvpnSpoke};
use kube::CustomResourceExt;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn crds() -> Vec<(&'static str, Value)> {
    vec![
        ("DmvpnHub", serde_json::to_value(DmvpnHub::crd()).unwrap()),
        (
            "DmvpnSpoke",
            serde_json::to_value(DmvpnSpoke::crd()).unwrap(),
        ),
        ("DmvpnNode", serde_json::to_value(DmvpnNode::crd()).unwrap()),
    ]
}

fn schema_of(kind: &str) -> Value {
    let (_, crd) = crds().into_iter().find(|(k, _)| *k == kind).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn committed_yaml_matches_the_types() {
    let files = dmvpn_crds::crd_files().unwrap();
    for dir in ["crds", "charts/kube-dmvpn/crds"] {
        for (name, yaml) in &files {
            let path = repo().join(dir).join(name);
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                committed == *yaml,
                "{} differs from the Rust types: run `cargo run -p dmvpn-crds --bin crdgen -- --out crds --out charts/kube-dmvpn/crds`",
                path.display()
            );
        }
    }
}

#[test]
fn committed_yaml_parses_back_to_the_crd() {
    let files = dmvpn_crds::crd_files().unwrap();
    for ((_, yaml), (kind, crd)) in files.iter().zip(crds()) {
        let parsed: Value = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(parsed, crd, "{kind}");
    }
}

/// The keys `JSONSchemaProps` (apiextensions.k8s.io/v1) knows; anything else fails decoding.
const KNOWN_KEYS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "example",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Keys a structural schema must not use (`$ref`, `definitions`, ...: the apiserver refuses
/// them in a CRD), though `JSONSchemaProps` can hold some.
const FORBIDDEN_KEYS: &[&str] = &[
    "$ref",
    "$schema",
    "$defs",
    "definitions",
    "id",
    "uniqueItems",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "const",
];

/// Keys a value validation (inside `allOf`/`anyOf`/`oneOf`/`not`) must not carry.
const FORBIDDEN_IN_JUNCTORS: &[&str] = &[
    "type",
    "default",
    "additionalProperties",
    "nullable",
    "description",
    "x-kubernetes-validations",
];

/// Checks the structural-schema rules on `s` at `path`, appending violations to `out`.
fn check_structural(s: &Value, path: &str, in_junctor: bool, out: &mut Vec<String>) {
    let Some(obj) = s.as_object() else {
        out.push(format!("{path}: not an object"));
        return;
    };
    for key in obj.keys() {
        if FORBIDDEN_KEYS.contains(&key.as_str()) {
            out.push(format!(
                "{path}: {key} is not allowed in a structural schema"
            ));
        } else if !KNOWN_KEYS.contains(&key.as_str()) {
            out.push(format!("{path}: {key} is not a JSONSchemaProps field"));
        }
    }
    if in_junctor {
        for key in FORBIDDEN_IN_JUNCTORS {
            if obj.contains_key(*key) {
                out.push(format!("{path}: {key} inside allOf/anyOf/oneOf/not"));
            }
        }
    } else {
        let escape = obj.get("x-kubernetes-int-or-string") == Some(&json!(true))
            || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
        match obj.get("type").and_then(Value::as_str) {
            Some("object" | "array" | "string" | "integer" | "number" | "boolean") => {}
            Some(t) => out.push(format!("{path}: type {t} is not an OpenAPI v3 type")),
            None if escape => {}
            None => out.push(format!("{path}: no type")),
        }
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!(
            "{path}: properties and additionalProperties together"
        ));
    }
    if obj.get("additionalProperties") == Some(&json!(false)) {
        out.push(format!("{path}: additionalProperties: false"));
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("array") if !obj.contains_key("items") && !in_junctor => {
            out.push(format!("{path}: an array without items"));
        }
        Some(t) if t != "array" && obj.contains_key("items") => {
            out.push(format!("{path}: items on a {t}"));
        }
        _ => {}
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        let t = obj.get("type").and_then(Value::as_str);
        for v in values {
            let ok = match t {
                Some("string") => v.is_string(),
                Some("integer") => v.is_i64() || v.is_u64(),
                _ => true,
            };
            if !ok {
                out.push(format!("{path}: enum value {v} is not a {t:?}"));
            }
        }
    }
    if obj.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        let keys = obj
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array);
        let required = &obj["items"]["required"];
        match keys {
            Some(keys) if !keys.is_empty() => {
                for k in keys {
                    let has_default = obj["items"]["properties"][k.as_str().unwrap_or("")]
                        .get("default")
                        .is_some();
                    if !required.as_array().is_some_and(|r| r.contains(k)) && !has_default {
                        out.push(format!(
                            "{path}: list map key {k} is neither required nor defaulted"
                        ));
                    }
                }
            }
            _ => out.push(format!("{path}: list-type map without list-map-keys")),
        }
    }
    if let Some(required) = obj.get("required").and_then(Value::as_array) {
        for r in required {
            let name = r.as_str().unwrap_or("");
            let declared = obj.get("properties").and_then(|p| p.get(name)).is_some();
            if !in_junctor && !declared {
                out.push(format!("{path}: required {name} is not a property"));
            }
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            check_structural(p, &format!("{path}.{name}"), in_junctor, out);
        }
    }
    if let Some(items) = obj.get("items") {
        check_structural(items, &format!("{path}[]"), in_junctor, out);
    }
    if let Some(ap) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        check_structural(ap, &format!("{path}{{}}"), in_junctor, out);
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in obj
            .get(junctor)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let sub_path = format!("{path}.{junctor}[{i}]");
            check_structural(sub, &sub_path, true, out);
            // A value validation may only name properties the structural part declares.
            for name in sub
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if obj.get("properties").and_then(|p| p.get(name)).is_none() {
                    out.push(format!(
                        "{sub_path}: {name} is not declared outside the junctor"
                    ));
                }
            }
            for name in sub
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if obj.get("properties").and_then(|p| p.get(name)).is_none() {
                    out.push(format!(
                        "{sub_path}: required {name} is not declared outside the junctor"
                    ));
                }
            }
        }
    }
    if let Some(not) = obj.get("not") {
        check_structural(not, &format!("{path}.not"), true, out);
    }
}

#[test]
fn schemas_are_structural() {
    for (kind, crd) in crds() {
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert_eq!(schema["type"], "object", "{kind}");
        let mut problems = Vec::new();
        check_structural(schema, kind, false, &mut problems);
        assert!(problems.is_empty(), "{kind}:\n{}", problems.join("\n"));
        // metadata stays the apiserver's: only `type: object` may be said of it.
        let meta = &schema["properties"]["metadata"];
        assert!(
            meta.is_null() || meta == &json!({"type": "object"}),
            "{kind}: {meta}"
        );
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["subresources"]["status"], json!({}), "{kind}");
        assert_eq!(crd["spec"]["scope"], "Cluster", "{kind}");
        assert_eq!(crd["spec"]["group"], "dmvpn.io", "{kind}");
        assert_eq!(version["name"], "v1alpha1", "{kind}");
    }
}

#[test]
fn the_structural_check_refuses_what_the_apiserver_refuses() {
    // schemars's own schema for an IP prefix: a oneOf of the two families, each with a type,
    // which the apiserver refuses below the root.
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let ipnet = generator.subschema_for::<ipnet::IpNet>().to_value();
    let defs = generator.take_definitions(true);
    let inlined = defs.get("IpNet").cloned().unwrap_or(ipnet);
    let mut problems = Vec::new();
    check_structural(&inlined, "IpNet", false, &mut problems);
    assert!(problems.iter().any(|p| p.contains("oneOf")), "{problems:?}");
    for (schema, needle) in [
        (
            json!({"type": "object", "additionalProperties": false}),
            "additionalProperties: false",
        ),
        (json!({"properties": {}}), "no type"),
        (json!({"type": "array"}), "without items"),
        (json!({"$ref": "#/x", "type": "object"}), "$ref"),
        (
            json!({"type": "string", "uniqueItems": true}),
            "uniqueItems",
        ),
        (json!({"type": "object", "required": ["a"]}), "required a"),
        (
            json!({"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map"}),
            "list-map-keys",
        ),
    ] {
        let mut problems = Vec::new();
        check_structural(&schema, "s", false, &mut problems);
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{schema}: {problems:?}"
        );
    }
}

/// Every subschema with its JSON path, depth first.
fn walk<'a>(s: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), s));
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            walk(p, format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = s.get("items") {
        walk(items, format!("{path}[]"), out);
    }
    if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
        walk(ap, format!("{path}{{}}"), out);
    }
}

#[test]
fn defaults_validate_against_their_schemas() {
    // The apiserver refuses a CRD whose defaults do not validate (and prunes unknown fields
    // of object defaults).
    for (kind, _) in crds() {
        let schema = schema_of(kind);
        let mut nodes = Vec::new();
        walk(&schema, kind.to_owned(), &mut nodes);
        let mut defaults = 0;
        for (path, node) in nodes {
            if let Some(default) = node.get("default") {
                defaults += 1;
                let validator = jsonschema::validator_for(node).unwrap();
                let errors: Vec<String> = validator
                    .iter_errors(default)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{path}: default {default}: {errors:?}");
            }
        }
        assert!(defaults > 0, "{kind} has no defaults");
    }
}

#[test]
fn cel_rules_compile_within_the_cost_budget() {
    let mut rules = 0;
    for (kind, _) in crds() {
        let schema = schema_of(kind);
        let mut nodes = Vec::new();
        walk(&schema, kind.to_owned(), &mut nodes);
        for (path, node) in nodes {
            let Some(validations) = node
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
            else {
                continue;
            };
            let compiled = kube_cel::compile_schema(node);
            assert!(
                !compiled.has_errors(),
                "{path}: {:?}",
                compiled.compilation_errors()
            );
            for v in validations {
                rules += 1;
                let rule = v["rule"].as_str().unwrap();
                assert!(
                    v["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{path}"
                );
                let warnings =
                    kube_cel::analyze_rule(rule, &compiled, kube_cel::ScopeContext::CrdValidation);
                assert!(warnings.is_empty(), "{path}: {rule}: {warnings:?}");
            }
        }
    }
    assert!(rules >= 10, "{rules} CEL rules");
}

/// Whether `json_path` (a printer column's, `.a.b[?(...)].c`) names a field of `schema`.
fn resolves(schema: &Value, json_path: &str) -> bool {
    let mut node = schema;
    let path = json_path.trim_start_matches('.');
    for part in path.split('.') {
        if part == "metadata" || part.starts_with("creationTimestamp") {
            return true;
        }
        let (name, filtered) = match part.split_once('[') {
            Some((name, _)) => (name, true),
            None => (part, false),
        };
        // `conditions[?(@.type=="Ready")]` splits on its inner dot: skip the filter's tail.
        if name.starts_with("type==") || name.contains(')') {
            continue;
        }
        let Some(next) = node.get("properties").and_then(|p| p.get(name)) else {
            return false;
        };
        node = if filtered { &next["items"] } else { next };
    }
    true
}

#[test]
fn printer_columns_name_fields_of_the_schema() {
    for (kind, crd) in crds() {
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = columns
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if kind == "DmvpnNode" {
            &["Role", "Tunnel", "NBMA", "Peers", "Ready", "Age"]
        } else {
            &["Node", "Tunnel", "NBMA", "Ready", "Age"]
        };
        assert_eq!(names, expected, "{kind}");
        for c in columns {
            let path = c["jsonPath"].as_str().unwrap();
            assert!(resolves(schema, path), "{kind}: {path} names no field");
        }
    }
    assert!(!resolves(&schema_of("DmvpnHub"), ".status.nosuchfield"));
}

/// The documents of every file in `examples/`, with the file they come from.
fn examples() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
            docs.push((name.clone(), doc));
        }
    }
    docs
}

/// Every problem the apiserver would report for `doc`: the OpenAPI schema, then the CEL
/// rules (evaluated by kube-cel as the apiserver evaluates them, defaults applied first).
fn problems(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or("");
    let schema = schema_of(kind);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut out: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if out.is_empty()
        && let Err(errors) = kube_cel::Validator::new().validate(&schema, doc, None)
    {
        out.extend(
            errors
                .as_slice()
                .iter()
                .map(|e| format!("{}: {}", e.field_path, e.message)),
        );
    }
    out
}

#[test]
fn examples_validate_against_the_generated_schemas() {
    let docs = examples();
    let mut seen = Vec::new();
    let secrets: Vec<&Value> = docs
        .iter()
        .filter(|(_, d)| d["kind"] == "Secret")
        .map(|(_, d)| d)
        .collect();
    for (file, doc) in &docs {
        let kind = doc["kind"].as_str().unwrap();
        match kind {
            "Secret" => {
                assert_eq!(doc["metadata"]["namespace"], "kube-dmvpn", "{file}");
                continue;
            }
            "DmvpnHub" => {
                let hub: DmvpnHub = serde_json::from_value(doc.clone()).unwrap();
                assert!(hub.spec.site.tunnel.address.is_some(), "{file}");
            }
            "DmvpnSpoke" => {
                let spoke: DmvpnSpoke = serde_json::from_value(doc.clone()).unwrap();
                assert!(!spoke.spec.hubs.is_empty(), "{file}");
            }
            other => panic!("{file}: unexpected kind {other}"),
        }
        seen.push(kind);
        let p = problems(doc);
        assert!(p.is_empty(), "{file}: {p:?}");
        // Every Secret key the site names is in the examples' Secrets.
        let spec = &doc["spec"];
        for r in [
            &spec["ipsec"]["preSharedKeySecretRef"],
            &spec["nhrp"]["authenticationSecretRef"],
        ] {
            let (name, key) = (&r["name"], &r["key"]);
            assert!(
                secrets.iter().any(|s| s["metadata"]["name"] == *name
                    && s["stringData"].get(key.as_str().unwrap()).is_some()),
                "{file}: no Secret {name} with key {key} in examples/"
            );
        }
    }
    assert_eq!(seen, ["DmvpnHub", "DmvpnSpoke", "DmvpnSpoke"]);
}

/// The hub example with `edit` applied to its spec.
fn hub_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut doc = examples()
        .into_iter()
        .find(|(_, d)| d["kind"] == "DmvpnHub")
        .unwrap()
        .1;
    edit(&mut doc["spec"]);
    doc
}

#[test]
fn validation_refuses_broken_sites() {
    let cases: Vec<(&str, Value)> = vec![
        (
            "exactly one of address",
            hub_with(|s| s["tunnel"]["pool"] = json!({"subnet": "10.1.1.0/24"})),
        ),
        (
            "exactly one of address",
            hub_with(|s| {
                s["tunnel"].as_object_mut().unwrap().remove("address");
            }),
        ),
        (
            "prefix length",
            hub_with(|s| s["tunnel"]["address"] = json!("10.1.1.300/24")),
        ),
        (
            "IPv4 or IPv6",
            hub_with(|s| s["gateway"]["nbmaAddress"]["override"] = json!("1.2.3")),
        ),
        (
            "from: Service needs service",
            hub_with(|s| s["gateway"]["nbmaAddress"]["from"] = json!("Service")),
        ),
        (
            "from: Annotation needs annotation",
            hub_with(|s| s["gateway"]["nbmaAddress"]["from"] = json!("Annotation")),
        ),
        (
            "is not one of",
            hub_with(|s| s["gateway"]["nbmaAddress"]["from"] = json!("Hostname")),
        ),
        (
            "exactly one of preSharedKeySecretRef",
            hub_with(|s| s["ipsec"]["certificateSecretRef"] = json!({"name": "hub-tls"})),
        ),
        (
            "exactly one of preSharedKeySecretRef",
            hub_with(|s| {
                s["ipsec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("preSharedKeySecretRef");
            }),
        ),
        (
            "without host bits",
            hub_with(|s| s["routes"] = json!({"advertise": ["192.168.1.1/24"]})),
        ),
        ("minimum", hub_with(|s| s["tunnel"]["mtu"] = json!(100))),
        ("minimum", hub_with(|s| s["nhrp"]["networkId"] = json!(0))),
        (
            "does not match",
            hub_with(|s| s["ipsec"]["preSharedKeySecretRef"]["name"] = json!("Bad_Name")),
        ),
        (
            "exactly one of nbmaAddress and host",
            hub_with(|s| s["hubs"] = json!([{"tunnelAddress": "10.1.1.9"}])),
        ),
    ];
    for (needle, doc) in cases {
        let p = problems(&doc);
        assert!(
            p.iter().any(|m| m.contains(needle)),
            "expected a problem with {needle:?}, got {p:?} for {}",
            doc["spec"]
        );
    }
    let mut spoke = examples()
        .into_iter()
        .find(|(_, d)| d["kind"] == "DmvpnSpoke")
        .unwrap()
        .1;
    spoke["spec"]["hubs"] = json!([]);
    let p = problems(&spoke);
    assert!(p.iter().any(|m| m.contains("hubs")), "{p:?}");
}
