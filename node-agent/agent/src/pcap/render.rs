//! The text form of `dmvpnctl pcap`: one block per frame, one indented section per layer,
//! fields as `name: value` lines in the order the codec declares them.

use std::fmt::Write;

use serde_json::Value;

use super::decode::{Frame, Roundtrip};

/// Renders frames as text. With `roundtrip`, each understood layer says whether it emitted
/// back to the same bytes.
pub fn render_text(frames: &[Frame], roundtrip: bool) -> String {
    let mut out = String::new();
    for frame in frames {
        let _ = writeln!(
            out,
            "Frame {}: {} bytes, time {:.6}",
            frame.number, frame.length, frame.time
        );
        for layer in &frame.layers {
            let mut title = layer.protocol.to_uppercase();
            if roundtrip {
                match layer.roundtrip {
                    Some(Roundtrip::Exact) => title.push_str("  [round trip: exact]"),
                    Some(Roundtrip::Mismatch) => title.push_str("  [round trip: MISMATCH]"),
                    None => {}
                }
            }
            if let Some(error) = &layer.error {
                let _ = write!(title, "  [error: {error}]");
            }
            let _ = writeln!(out, "  {title}");
            value_lines(&mut out, &layer.fields, 2);
        }
    }
    out
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("-".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        // A unit-like enum variant wrapping a scalar, such as {"Unknown": 9}.
        Value::Object(o) if o.len() == 1 => {
            let (k, v) = o.iter().next()?;
            scalar(v)
                .filter(|_| !matches!(v, Value::Object(_) | Value::Array(_)))
                .map(|s| format!("{k}({s})"))
        }
        _ => None,
    }
}

fn value_lines(out: &mut String, value: &Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match scalar(v) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}{key}: {s}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}{key}:");
                        value_lines(out, v, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match scalar(item) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}[{i}] {s}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}[{i}]");
                        value_lines(out, item, depth + 1);
                    }
                }
            }
        }
        Value::Null => {}
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other).unwrap_or_default());
        }
    }
}
