//! Placeholder: filled by its own issue (see `issues`). It sits above `lookout-model` and
//! below the `lookout` binary; it talks to other components only over their HTTP APIs.
#![forbid(unsafe_code)]
