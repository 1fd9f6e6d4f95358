//! A job body parsed as JSON that refuses duplicate keys, at every depth.
//!
//! `serde_json` keeps the last of two equal keys without a word, so
//! `{"namespace": "a", "namespace": "b"}` deployed into `b` while a
//! producer's own checks, or a proxy's, may have read `a`. A job that says
//! two things is refused instead (`invalid_job`, naming the key and the
//! object it is in). `serde_json` has no option for it, so the body is read
//! through a visitor of our own into a `serde_json::Value`, with
//! `serde_path_to_error` saying where. The simulator has its own copy of
//! this idea (`sim::strict_json`) on purpose: it shares nothing with the
//! worker.
//!
//! The visitor also bounds what parsing allocates: a body may open at most
//! [`MAX_CONTAINERS`] objects and arrays, and each array is shrunk to its
//! length once read (an array of a million tiny arrays would otherwise keep
//! the spare capacity of each). With the body cap (`amqp.max_job_bytes`)
//! that bounds a parse's peak memory; see `memory_tests` for the measure.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::{Map, Number, Value};

use crate::contract::quote::{path_key, quoted};

/// Most objects and arrays one job body may hold. Each costs far more
/// memory than its two bytes of JSON (an object's map allocates a node of
/// about 600 bytes even for one key: `[{"a":0},...]` took 87 times its size
/// to parse), and a real job holds a few dozen: the root, its sections, the
/// bindings (at most 256) and what they nest.
pub(super) const MAX_CONTAINERS: usize = 10_000;

/// Parses a job body. The error is the whole message: `job is not valid
/// JSON: ...`, or `job: <path>: duplicate key "k" at line L column C`.
pub(super) fn parse(body: &[u8]) -> Result<Value, String> {
    let not_json = |e: &serde_json::Error| format!("job is not valid JSON: {e}");
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let budget = Cell::new(MAX_CONTAINERS);
    let parsed = StrictSeed { budget: &budget }
        .deserialize(serde_path_to_error::Deserializer::new(
            &mut deserializer,
            &mut track,
        ))
        .map_err(|e| {
            if e.classify() != Category::Data {
                return not_json(&e);
            }
            // Data errors come only from the visitor (a duplicate key, the
            // container budget), named with the path of the object or
            // array it was found in.
            match shown_path(&track.path()) {
                root if root.is_empty() => format!("job: {e}"),
                path => format!("job: {path}: {e}"),
            }
        })?;
    deserializer.end().map_err(|e| not_json(&e))?;
    Ok(parsed)
}

/// A path as serde_path_to_error writes it (`bundle.prefix`,
/// `bindings[3].name`), each key through [`path_key`], so a huge or strange
/// key cannot make the message huge or break its line. Empty at the root.
pub(super) fn shown_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut shown = String::new();
    for segment in path.iter() {
        let key = match segment {
            Segment::Seq { index } => {
                shown.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } | Segment::Enum { variant: key } => path_key(key),
            Segment::Unknown => "?".into(),
        };
        if !shown.is_empty() {
            shown.push('.');
        }
        shown.push_str(&key);
    }
    shown
}

/// Reads one JSON value with [`StrictVisitor`], sharing the budget of
/// containers with every value inside it.
#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    /// Objects and arrays the rest of the body may still open.
    budget: &'a Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor(self))
    }
}

struct StrictVisitor<'a>(StrictSeed<'a>);

impl StrictVisitor<'_> {
    /// Takes one container from the budget, or fails past
    /// [`MAX_CONTAINERS`].
    fn open<E: de::Error>(&self) -> Result<(), E> {
        let left = self.0.budget.get();
        if left == 0 {
            return Err(E::custom(format!(
                "more than {MAX_CONTAINERS} objects and arrays in a job"
            )));
        }
        self.0.budget.set(left - 1);
        Ok(())
    }
}

impl<'de> Visitor<'de> for StrictVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.open()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.0)? {
            items.push(item);
        }
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.open()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.0)?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {}", quoted(&key))));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_every_depth_naming_key_and_path() {
        let cases: [(&[u8], &str); 5] = [
            (br#"{"a":1,"a":2}"#, "job: duplicate key \"a\" at line 1"),
            (
                br#"{"labels":{"tenant":"x","tenant":"y"}}"#,
                "job: labels: duplicate key \"tenant\"",
            ),
            (
                br#"{"bundle":{"prefix":"a/","bucket":"b","prefix":"c/"}}"#,
                "job: bundle: duplicate key \"prefix\"",
            ),
            (
                br#"{"bindings":[{"name":"A"},{"name":"B","name":"C"}]}"#,
                "job: bindings[1]: duplicate key \"name\"",
            ),
            (
                br#"{"x":{"y z":{"k":1,"k":1}}}"#,
                "job: x.\"y z\": duplicate key \"k\"",
            ),
        ];
        for (body, start) in cases {
            let err = parse(body).unwrap_err();
            assert!(err.starts_with(start), "{err}");
        }
    }

    #[test]
    fn anything_else_parses_as_serde_json_does() {
        let body = br#"{"i":-1,"u":2,"f":1.5,"s":"x","n":null,"l":[true,[]],"o":{}}"#;
        let expected: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(parse(body), Ok(expected));
        let trailing = parse(br#"{"a":1} trailing"#).unwrap_err();
        assert!(
            trailing.starts_with("job is not valid JSON: "),
            "{trailing}"
        );
        let broken = parse(b"{not json").unwrap_err();
        assert!(broken.starts_with("job is not valid JSON: "), "{broken}");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let err = parse(deep.as_bytes()).unwrap_err();
        assert!(
            err.starts_with("job is not valid JSON: recursion limit"),
            "{err}"
        );
    }
}
