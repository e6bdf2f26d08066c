//! IKEv2 (placeholder until the codec branch lands).
