//! NHRP (placeholder until the codec branch lands).
