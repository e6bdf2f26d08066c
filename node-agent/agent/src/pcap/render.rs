//! The text form of `dmvpnctl pcap`: one block per frame, one indented section per layer,
//! each in the form its engineers know (see [`super::decode::Layer::text`]), or else the
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
            let mut marks = String::new();
            match (roundtrip, layer.roundtrip) {
                (true, Some(Roundtrip::Exact)) => marks.push_str("  [round trip: exact]"),
                (true, Some(Roundtrip::Mismatch)) => marks.push_str("  [round trip: MISMATCH]"),
                _ => {}
            }
            if let Some(error) = &layer.error {
                let _ = write!(marks, "  [error: {error}]");
            }
            let name = display_name(layer.protocol);
            match &layer.text {
                // One-line layers read best on the title line.
                Some(text) if !text.contains('\n') => {
                    let _ = writeln!(out, "  {name}: {text}{marks}");
                }
                Some(text) => {
                    let _ = writeln!(out, "  {name}{marks}");
                    for line in text.lines() {
                        let _ = writeln!(out, "    {line}");
                    }
                }
                None => {
                    let _ = writeln!(out, "  {name}{marks}");
                    value_lines(&mut out, &layer.fields, 2);
                }
            }
        }
    }
    out
}

/// How engineers spell the protocols.
fn display_name(protocol: &str) -> String {
    match protocol {
        "ipv4" => "IPv4".into(),
        "ipv6" => "IPv6".into(),
        "ikev2" => "IKEv2".into(),
        "ikev2-sk" => "IKEv2 SK".into(),
        "esp-decrypted" => "ESP plaintext".into(),
        "nat-keepalive" => "NAT-keepalive".into(),
        "non-esp-marker" => "non-ESP marker".into(),
        "payload" => "Payload".into(),
        other => other.to_uppercase(),
    }
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
