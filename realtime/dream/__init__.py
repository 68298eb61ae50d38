"""The dream itself: objectives, the kernel's step, warm start and flow, backends, the per-frame dreamer."""
