//! What the `up_*` tests share beyond `stackctl_tests::up`: a service's entry in `stackctl status
//! --json`.
#![allow(dead_code)] // Each test file uses a part.

use serde_json::Value;
use stackctl_tests::up::Stack;

/// One service's entry in a status.
pub fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .and_then(|services| services.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name:?} in the status:\n{status:#}"))
}

/// A service's entry in the current status.
pub fn service_status(stack: &Stack, name: &str) -> Value {
    service(&stack.status(), name).clone()
}

/// A service's current state: `ready`, `stopped`...
pub fn state(stack: &Stack, name: &str) -> String {
    service_status(stack, name)["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
