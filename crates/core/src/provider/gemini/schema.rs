//! JSON Schema → the OpenAPI subset Gemini accepts in `functionDeclarations[].parameters` and
//! `generationConfig.responseSchema`. Pure, and lossy on purpose: what Gemini has no word for
//! is dropped rather than sent to fail the whole request.
//!
//! What it does: local `$ref`s (`#/$defs/…`, `#/definitions/…`) are inlined, a recursive one
//! cut off as a plain object (Gemini's subset has no references); `allOf` is merged into one
//! schema; a `null` member of `anyOf`/`oneOf` or of a `type` list becomes `nullable: true`, and
//! what remains is either that one schema or an `anyOf`; `const` becomes a one-value `enum`;
//! enums of anything but strings, formats Gemini does not know, and every keyword outside the
//! subset (`$schema`, `additionalProperties`, `patternProperties`, `exclusiveMinimum`, …) are
//! dropped; `required` keeps only declared properties; a missing `type` is inferred from
//! `properties`/`items`/`enum`; an object with no properties loses its empty `properties`.
//! It does not validate: a schema Gemini still refuses comes back as the upstream's 400.

use serde_json::{Map, Value, json};

/// The keywords of Gemini's schema subset; every other key is dropped.
const KEPT: &[&str] = &[
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

/// How deep `$ref`s are followed before the rest is cut off (a guard against huge expansions).
const MAX_DEPTH: usize = 32;

/// The `parameters` of a function declaration: `None` when the function takes no arguments,
/// since Gemini refuses an object schema without properties.
pub fn function_parameters(parameters: Option<&Value>) -> Option<Value> {
    let reduced = to_gemini(parameters?);
    let has_properties = reduced
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    let is_object = reduced.get("type").and_then(Value::as_str) == Some("object");
    (has_properties || !is_object).then_some(reduced)
}

/// Reduces a whole JSON Schema document (its `$defs` resolved against itself).
pub fn to_gemini(schema: &Value) -> Value {
    let mut reducer = Reducer {
        root: schema,
        following: Vec::new(),
    };
    reducer.reduce(schema)
}

struct Reducer<'a> {
    root: &'a Value,
    /// The `$ref`s being expanded, outermost first: a ref already here is recursive.
    following: Vec<String>,
}

impl<'a> Reducer<'a> {
    fn reduce(&mut self, node: &'a Value) -> Value {
        let Some(object) = node.as_object() else {
            // `true` (anything) and malformed nodes: no constraint Gemini could express.
            return Value::Object(Map::new());
        };
        if let Some(Value::String(reference)) = object.get("$ref") {
            return self.follow(reference, object);
        }
        let mut out = Map::new();
        if let Some(Value::Array(all)) = object.get("allOf") {
            for member in all {
                merge_into(&mut out, self.reduce(member));
            }
        }
        for (key, value) in object {
            match key.as_str() {
                "properties" => self.properties(value, &mut out),
                "items" => self.items(value, &mut out),
                "anyOf" | "oneOf" => self.alternatives(value, &mut out),
                "const" if value.is_string() => {
                    out.insert("enum".into(), json!([value]));
                }
                k if KEPT.contains(&k) => {
                    out.insert(key.clone(), value.clone());
                }
                _ => {}
            }
        }
        tidy(&mut out);
        Value::Object(out)
    }

    /// Inlines a local reference; the keywords beside it (a description) win over the target's.
    fn follow(&mut self, reference: &str, beside: &'a Map<String, Value>) -> Value {
        let target = local_target(self.root, reference);
        let recursive = self.following.iter().any(|r| r == reference);
        let mut out = match target {
            Some(target) if !recursive && self.following.len() < MAX_DEPTH => {
                self.following.push(reference.to_owned());
                let reduced = self.reduce(target);
                self.following.pop();
                reduced
            }
            // Recursive, too deep, or not a local reference: the shape is unknown past here.
            _ => json!({"type": "object"}),
        };
        let mut siblings = beside.clone();
        siblings.remove("$ref");
        if let (Value::Object(out), Value::Object(extra)) =
            (&mut out, self.reduce_owned(Value::Object(siblings)))
        {
            for (k, v) in extra {
                out.insert(k, v);
            }
        }
        out
    }

    /// Reduces a node built here (not borrowed from the document).
    fn reduce_owned(&mut self, node: Value) -> Value {
        let mut inner = Reducer {
            root: self.root,
            following: std::mem::take(&mut self.following),
        };
        let reduced = inner.reduce(&node);
        self.following = inner.following;
        reduced
    }

    fn properties(&mut self, value: &'a Value, out: &mut Map<String, Value>) {
        let Some(properties) = value.as_object() else {
            return;
        };
        let reduced: Map<String, Value> = properties
            .iter()
            .map(|(name, schema)| (name.clone(), self.reduce(schema)))
            .collect();
        let entry = out
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(existing) = entry {
            existing.extend(reduced);
        }
    }

    /// `items`: one schema; a tuple (`[a, b]`, older drafts) keeps its first member's shape.
    fn items(&mut self, value: &'a Value, out: &mut Map<String, Value>) {
        let schema = match value {
            Value::Array(tuple) => match tuple.first() {
                Some(first) => first,
                None => return,
            },
            other => other,
        };
        out.insert("items".into(), self.reduce(schema));
    }

    /// `anyOf`/`oneOf`: null members become `nullable`; one member left is inlined.
    fn alternatives(&mut self, value: &'a Value, out: &mut Map<String, Value>) {
        let Some(members) = value.as_array() else {
            return;
        };
        let mut kept = Vec::new();
        for member in members {
            if member.get("type").and_then(Value::as_str) == Some("null") {
                out.insert("nullable".into(), Value::Bool(true));
            } else {
                kept.push(self.reduce(member));
            }
        }
        match kept.len() {
            0 => {}
            1 => {
                if let Some(Value::Object(only)) = kept.pop() {
                    for (k, v) in only {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            _ => {
                out.insert("anyOf".into(), Value::Array(kept));
            }
        }
    }
}

/// Resolves `#/$defs/Name`, `#/definitions/Name` or any other JSON pointer into the root.
fn local_target<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    root.pointer(pointer)
}

/// Merges an `allOf` member: properties and required lists add up, other keywords keep the
/// first value seen.
fn merge_into(out: &mut Map<String, Value>, member: Value) {
    let Value::Object(member) = member else {
        return;
    };
    for (key, value) in member {
        match (key.as_str(), out.get_mut(&key), value) {
            ("properties", Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
            ("required", Some(Value::Array(have)), Value::Array(more)) => {
                for name in more {
                    if !have.contains(&name) {
                        have.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                out.insert(key, value);
            }
        }
    }
}

/// The checks that need the whole reduced node: type lists, enums, formats, required names,
/// inferred types, empty properties.
fn tidy(out: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = out.get("type").cloned() {
        type_list(out, &types);
    }
    if out.get("type").is_none() && !out.contains_key("anyOf") {
        let inferred = if out.contains_key("properties") {
            Some("object")
        } else if out.contains_key("items") {
            Some("array")
        } else if out.contains_key("enum") {
            Some("string")
        } else {
            None
        };
        if let Some(t) = inferred {
            out.insert("type".into(), Value::String(t.into()));
        }
    }
    let kind = out.get("type").and_then(Value::as_str).unwrap_or("");
    let kind = kind.to_ascii_lowercase();
    if let Some(Value::Array(values)) = out.get("enum")
        && !values.iter().all(Value::is_string)
    {
        out.remove("enum");
    }
    if let Some(format) = out.get("format").and_then(Value::as_str)
        && !format_allowed(&kind, format)
    {
        out.remove("format");
    }
    let declared: Vec<String> = match out.get("properties") {
        Some(Value::Object(p)) => p.keys().cloned().collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Array(required)) = out.get_mut("required") {
        required.retain(|name| {
            name.as_str()
                .is_some_and(|n| declared.iter().any(|d| d == n))
        });
        if required.is_empty() {
            out.remove("required");
        }
    }
    if matches!(out.get("properties"), Some(Value::Object(p)) if p.is_empty()) {
        out.remove("properties");
    }
}

/// `type: ["string", "null"]` → `type: string, nullable: true`; several real types → `anyOf`.
fn type_list(out: &mut Map<String, Value>, types: &[Value]) {
    let mut real: Vec<&str> = Vec::new();
    for t in types.iter().filter_map(Value::as_str) {
        if t == "null" {
            out.insert("nullable".into(), Value::Bool(true));
        } else {
            real.push(t);
        }
    }
    match real.as_slice() {
        [] => {
            out.remove("type");
        }
        [one] => {
            out.insert("type".into(), Value::String((*one).into()));
        }
        many => {
            out.remove("type");
            let members = many.iter().map(|t| json!({ "type": t })).collect();
            out.insert("anyOf".into(), Value::Array(members));
        }
    }
}

/// The formats Gemini accepts for each type.
fn format_allowed(kind: &str, format: &str) -> bool {
    match kind {
        "string" => matches!(format, "enum" | "date-time"),
        "integer" => matches!(format, "int32" | "int64"),
        "number" => matches!(format, "float" | "double"),
        _ => false,
    }
}
