//! Checks the `milagro_wire` types against a service's committed OpenAPI document, so
//! that neither can rename, add or drop a member the other keeps.
//!
//! Values of each type are serialized and checked against the schema the document gives
//! that type (a component, or an operation's inline request or answer schema):
//!
//! 1. each value must validate (JSON Schema 2020-12, the validator schemathesis uses:
//!    [`openapi::schema_errors`]) and read back as itself;
//! 2. each member of each value must be one the schema names (`properties` or
//!    `required`, through `$ref`, `allOf` and the `oneOf` branches that admit the value),
//!    even where the document leaves objects open: a member the type renamed is caught
//!    here, not accepted as an extra;
//! 3. each member the schema names must appear in some value checked against the same
//!    document: a member the document renamed, or added without the type, is caught.
//!
//! The documents carry no `example`s, so the other direction is 3 over the values of the
//! types rather than examples read into them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::openapi;

/// The pointer of component schema `name`.
pub fn component(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// The pointer of the JSON schema of the request body of `method path`.
pub fn request_body((method, path): (&str, &str)) -> String {
    format!(
        "#/paths/{}/{method}/requestBody/content/application~1json/schema",
        openapi::pointer_token(path)
    )
}

/// Values of wire types, each with the pointer of its schema in one document.
pub struct Documented {
    text: &'static str,
    doc: Value,
    cases: Vec<Case>,
    problems: Vec<String>,
}

struct Case {
    what: String,
    pointer: String,
    value: Value,
}

impl Documented {
    /// Values to check against `document` (an OpenAPI 3.1 document's text).
    pub fn new(document: &'static str) -> Self {
        Self {
            text: document,
            doc: serde_json::from_str(document).unwrap_or_else(|e| panic!("{e}")),
            cases: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Adds `values` of the wire type `T`, whose schema is at `pointer`; each must read
    /// back from its JSON as itself.
    pub fn values<T>(&mut self, pointer: &str, values: &[T]) -> &mut Self
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let what = std::any::type_name::<T>().replace("milagro_wire::", "");
        assert!(!values.is_empty(), "no value of {what} for {pointer}");
        for value in values {
            let json = serde_json::to_value(value).unwrap_or_else(|e| panic!("{what}: {e}"));
            match T::deserialize(&json) {
                Ok(read) if read == *value => {}
                Ok(read) => self
                    .problems
                    .push(format!("{what}: {json} reads back as {read:?}")),
                Err(e) => self
                    .problems
                    .push(format!("{what}: {json} does not read back: {e}")),
            }
            self.cases.push(Case {
                what: what.clone(),
                pointer: pointer.to_owned(),
                value: json,
            });
        }
        self
    }

    /// Everything that disagrees, each naming the type, the schema and the member.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.problems.clone();
        let checks: Vec<(String, Value)> = self
            .cases
            .iter()
            .map(|case| (case.pointer.clone(), case.value.clone()))
            .collect();
        let verdicts = openapi::schema_errors(self.text, &checks);
        let mut members = Members::default();
        for (case, errors) in self.cases.iter().zip(verdicts) {
            for error in errors {
                problems.push(format!("{} against {}: {error}", case.what, case.pointer));
            }
            let schema = self.resolve(&case.pointer);
            let mut undocumented = Vec::new();
            self.walk(&schema, &case.value, "", &mut members, &mut undocumented);
            for member in undocumented {
                problems.push(format!(
                    "{} against {}: member `{member}` is not in the document",
                    case.what, case.pointer
                ));
            }
        }
        for (location, names) in &members.declared {
            let seen = members.seen.get(location);
            for name in names
                .iter()
                .filter(|n| !seen.is_some_and(|s| s.contains(*n)))
            {
                problems.push(format!(
                    "{location}: documented member `{name}` is in no value of a wire type"
                ));
            }
        }
        // Once each: several values of a type usually share a problem.
        let mut said = BTreeSet::new();
        problems.retain(|problem| said.insert(problem.clone()));
        problems
    }

    /// The schema at `pointer` (`#/...`), with its location.
    fn resolve(&self, pointer: &str) -> Located {
        let path = pointer.trim_start_matches('#');
        let decoded = percent_decode(path);
        let schema = self
            .doc
            .pointer(&decoded)
            .unwrap_or_else(|| panic!("{pointer} is not in the document"))
            .clone();
        Located {
            at: pointer.to_owned(),
            schema,
        }
    }

    /// `schema` with its `$ref`s followed.
    fn follow(&self, located: &Located) -> Located {
        match located.schema.get("$ref").and_then(Value::as_str) {
            Some(target) => self.follow(&self.resolve(target)),
            None => located.clone(),
        }
    }

    /// The object schemas that apply to `value` under `located`: itself, its `allOf`
    /// branches, and the `oneOf` / `anyOf` branches that admit the value.
    fn shapes(&self, located: &Located, value: &Value) -> Vec<Located> {
        let here = self.follow(located);
        let mut shapes = vec![here.clone()];
        for (keyword, all) in [("allOf", true), ("oneOf", false), ("anyOf", false)] {
            let Some(branches) = here.schema.get(keyword).and_then(Value::as_array) else {
                continue;
            };
            for (i, branch) in branches.iter().enumerate() {
                let branch = self.follow(&Located {
                    at: format!("{}/{keyword}/{i}", here.at),
                    schema: branch.clone(),
                });
                if all || admits(&branch.schema, value) {
                    shapes.extend(self.shapes(&branch, value));
                }
            }
        }
        shapes
    }

    /// Checks `value`'s members against `located`, recording what is declared and seen.
    fn walk(
        &self,
        located: &Located,
        value: &Value,
        path: &str,
        members: &mut Members,
        undocumented: &mut Vec<String>,
    ) {
        let shapes = self.shapes(located, value);
        match value {
            Value::Object(object) => {
                for shape in &shapes {
                    if let Some(properties) =
                        shape.schema.get("properties").and_then(Value::as_object)
                    {
                        let declared = members.declared.entry(shape.at.clone()).or_default();
                        declared.extend(properties.keys().cloned());
                    }
                }
                for (name, member) in object {
                    let member_path =
                        format!("{path}{}{name}", if path.is_empty() { "" } else { "." });
                    let mut property = None;
                    for shape in &shapes {
                        if let Some(schema) = shape.schema["properties"].get(name) {
                            let seen = members.seen.entry(shape.at.clone()).or_default();
                            seen.insert(name.clone());
                            property.get_or_insert_with(|| Located {
                                at: format!("{}/properties/{name}", shape.at),
                                schema: schema.clone(),
                            });
                        }
                    }
                    let required = shapes.iter().any(|shape| {
                        shape.schema["required"]
                            .as_array()
                            .is_some_and(|names| names.iter().any(|n| n == name))
                    });
                    match property {
                        Some(property) => {
                            self.walk(&property, member, &member_path, members, undocumented)
                        }
                        None if required => {}
                        None => undocumented.push(member_path),
                    }
                }
            }
            Value::Array(items) => {
                let schema = shapes.iter().find_map(|shape| {
                    shape.schema.get("items").map(|items| Located {
                        at: format!("{}/items", shape.at),
                        schema: items.clone(),
                    })
                });
                if let Some(schema) = schema {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(
                            &schema,
                            item,
                            &format!("{path}[{i}]"),
                            members,
                            undocumented,
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// A schema and where it is (a pointer), which names its members in the problems.
#[derive(Clone)]
struct Located {
    at: String,
    schema: Value,
}

/// The members each object schema declares, and those some value used.
#[derive(Default)]
struct Members {
    declared: BTreeMap<String, BTreeSet<String>>,
    seen: BTreeMap<String, BTreeSet<String>>,
}

/// Whether a `oneOf` branch admits `value` by its JSON type (a branch naming no type
/// admits objects when it names members, anything otherwise).
fn admits(schema: &Value, value: &Value) -> bool {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let names = |types: &Value| match types {
        Value::String(one) => one == kind || (one == "number" && kind == "integer"),
        Value::Array(many) => many
            .iter()
            .any(|t| t == kind || (t == "number" && kind == "integer")),
        _ => false,
    };
    match schema.get("type") {
        Some(types) => names(types),
        None if schema.get("properties").is_some() || schema.get("allOf").is_some() => {
            kind == "object"
        }
        None => true,
    }
}

/// A URI fragment's percent-encoding undone (`%7B` → `{`), then its JSON pointer as
/// `serde_json::Value::pointer` reads it.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
