//! The C++ tool accepts config values as JSON strings or as numbers and
//! booleans; these helpers read a field either way, and wipe parsed JSON.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bad {
    /// The value has a JSON type that cannot stand for the wanted one.
    Type(&'static str),
    /// The value is a string that does not parse as the wanted type.
    Parse(&'static str),
}

/// A string field: strings as they are; numbers and booleans as written.
pub(crate) fn as_string(v: &Value) -> Result<String, Bad> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Bad::Type("a string")),
    }
}

/// An integer field: a JSON integer or a string holding one.
pub(crate) fn as_i64(v: &Value) -> Result<i64, Bad> {
    match v {
        Value::Number(n) => n.as_i64().ok_or(Bad::Parse("a whole number")),
        Value::String(s) => s.trim().parse().map_err(|_| Bad::Parse("a whole number")),
        _ => Err(Bad::Type("a whole number")),
    }
}

/// A yes/no field: JSON booleans, or the strings yes/no/true/false (any case).
pub(crate) fn as_bool(v: &Value) -> Result<bool, Bad> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(true),
            "no" | "false" => Ok(false),
            _ => Err(Bad::Parse("yes, no, true or false")),
        },
        _ => Err(Bad::Type("yes, no, true or false")),
    }
}

impl Bad {
    pub(crate) fn expected(&self) -> &'static str {
        match self {
            Bad::Type(e) | Bad::Parse(e) => e,
        }
    }
}

/// Zeroize every string in `v`, however deep: parsed files and provider
/// replies hold their secrets as plain `String`s.
pub(crate) fn wipe(v: &mut Value) {
    use zeroize::Zeroize;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(wipe),
        Value::Object(m) => wipe_map(m),
        _ => {}
    }
}

/// [`wipe`] every value of a JSON object.
pub(crate) fn wipe_map(m: &mut serde_json::Map<String, Value>) {
    m.values_mut().for_each(wipe);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wipe_reaches_every_string() {
        let mut v = json!({"refresh_token": "r", "n": [1, "two"], "o": {"k": "v"}, "b": true});
        wipe(&mut v);
        assert_eq!(v["refresh_token"], "");
        assert_eq!(v["n"][1], "");
        assert_eq!(v["o"]["k"], "");
        assert_eq!(
            v,
            json!({"refresh_token": "", "n": [1, ""], "o": {"k": ""}, "b": true})
        );
    }

    #[test]
    fn scalars_in_either_form() {
        assert_eq!(as_i64(&json!(600)), Ok(600));
        assert_eq!(as_i64(&json!("600")), Ok(600));
        assert_eq!(as_i64(&json!(" 9999999999 ")), Ok(9_999_999_999));
        assert!(as_i64(&json!("soon")).is_err());
        assert!(as_i64(&json!(1.5)).is_err());
        assert!(as_i64(&json!([1])).is_err());
        assert_eq!(as_bool(&json!("YES")), Ok(true));
        assert_eq!(as_bool(&json!("false")), Ok(false));
        assert_eq!(as_bool(&json!(true)), Ok(true));
        assert!(as_bool(&json!("maybe")).is_err());
        assert_eq!(as_string(&json!(42)), Ok("42".to_string()));
        assert!(as_string(&json!({})).is_err());
    }
}
