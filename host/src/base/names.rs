//! Names users give: steps, exports, workflows.

/// The name under which every step finds the trigger (`steps.trigger.event`).
pub const TRIGGER_STEP: &str = "trigger";

/// Step and export names: letters, digits and underscores, not starting
/// with a digit (Pipedream's rule for step names).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
